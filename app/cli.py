"""The `bctrl-server` command: serve, migrate, keys."""

from __future__ import annotations

import asyncio

import typer

from app.core.config import Settings
from app.core.logging import configure

cli = typer.Typer(no_args_is_help=True, help="Self-hosted BCTRL control plane")
keys = typer.Typer(no_args_is_help=True, help="API keys")
cli.add_typer(keys, name="keys")
agents = typer.Typer(no_args_is_help=True, help="Optional agent engines")
cli.add_typer(agents, name="agents")


@cli.command()
def serve(
    host: str | None = typer.Option(None, help="Overrides BCTRL_HOST"),
    port: int | None = typer.Option(None, help="Overrides BCTRL_PORT"),
) -> None:
    """Apply migrations, then serve the API."""
    import uvicorn

    from app.core.migrate import upgrade_sync
    from app.main import create_app

    overrides = {k: v for k, v in {"host": host, "port": port}.items() if v is not None}
    settings = Settings(**overrides)
    configure(settings.log_level, settings.log_json)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_sync(settings.resolved_database_url)
    if not settings.api_key:
        typer.echo("No BCTRL_API_KEY set: create a key with `bctrl-server keys create`.", err=True)
    app = create_app(settings)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        lifespan="on",
        log_level=settings.log_level,
        # No access log from uvicorn: it prints query strings, which can carry tokens. Ours prints paths.
        # log_config=None: uvicorn's records go through our handlers, which redact tokens.
        access_log=False,
        log_config=None,
        ws=_websocket_protocol(app) if settings.cdp_splice else "auto",
        # CDP frames can be tens of MB (full-page screenshots); compressing them costs more than it saves.
        ws_max_size=256 * 1024 * 1024,
        ws_per_message_deflate=False,
    )


def _websocket_protocol(app):
    """uvicorn's own websocket protocol, with /v1/cdp/ upgrades spliced to the browser (app/cdp/splice.py)."""
    from uvicorn.config import WS_PROTOCOLS
    from uvicorn.importer import import_from_string

    from app.cdp.splice import websocket_protocol

    return websocket_protocol(app, import_from_string(WS_PROTOCOLS["auto"]))


@cli.command()
def migrate() -> None:
    """Apply database migrations up to the newest revision."""
    from app.core.migrate import upgrade_sync

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    upgrade_sync(settings.resolved_database_url)
    typer.echo("database is up to date")


@keys.command("create")
def keys_create(
    account: str = typer.Option("default", help="Account name (created when missing)"),
    name: str = typer.Option("cli", help="A label for the key"),
) -> None:
    """Create an API key and print it once; only its hash is stored."""
    from app.accounts.service import create_key, get_or_create_account
    from app.core.db import Database
    from app.core.migrate import upgrade

    settings = Settings()
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run() -> str:
        await upgrade(settings.resolved_database_url)
        db = Database(settings.resolved_database_url)
        try:
            acct = await get_or_create_account(db, account)
            return (await create_key(db, acct.id, name)).secret
        finally:
            await db.dispose()

    typer.echo(asyncio.run(run()))


@agents.command("install")
def agents_install() -> None:
    """Install browser-use into its own virtualenv (BCTRL_BROWSER_USE_VENV); does nothing when it is there."""
    from app.invocations import agents as engines

    venv = Settings().resolved_browser_use_venv
    typer.echo(
        f"browser-use installed in {venv}"
        if engines.install(venv, typer.echo)
        else f"browser-use is already installed in {venv}"
    )


def main() -> None:
    cli()
