"""The `bctrl-server` command: serve, migrate, keys (create, list, revoke)."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import typer

from app.core.config import Settings
from app.core.logging import configure

cli = typer.Typer(no_args_is_help=True, help="Self-hosted BCTRL control plane")
keys = typer.Typer(no_args_is_help=True, help="API keys")
cli.add_typer(keys, name="keys")
agents = typer.Typer(no_args_is_help=True, help="Optional agent engines")
cli.add_typer(agents, name="agents")


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"bctrl-server {_version()}")
        raise typer.Exit()


@cli.callback()
def _options(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit"
    ),
) -> None:
    """Self-hosted BCTRL control plane"""


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
    typer.echo(f"bctrl-server {_version()}: applying database migrations...", err=True)
    with _quiet_migrations(settings.log_level) as applied:
        upgrade_sync(settings.resolved_database_url)
    typer.echo(f"database schema up to date ({_migrations(applied.count)})", err=True)
    app = create_app(settings)
    config = uvicorn.Config(
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
    server = _ready_server_class()(config, settings)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        raise typer.Exit(3)


class _CountUpgrades:
    """Alembic's "Running upgrade a -> b" lines, counted instead of printed (below debug)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet, self.count = quiet, 0

    def filter(self, record) -> bool:
        if record.getMessage().startswith("Running upgrade"):
            self.count += 1
        return not self.quiet


@contextlib.contextmanager
def _quiet_migrations(level: str):
    """While migrating: Alembic's per-revision INFO lines only at debug; at any other level they are
    counted, so one line can say how many were applied."""
    import logging

    quiet = level.lower() != "debug"
    counter = _CountUpgrades(quiet)
    migration = logging.getLogger("alembic.runtime.migration")
    migration.addFilter(counter)
    try:
        yield counter
    finally:
        migration.removeFilter(counter)


def _migrations(count: int) -> str:
    if count == 0:
        return "no migrations to apply"
    return f"{count} migration{'s' if count != 1 else ''} applied"


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bctrl-server")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


def _ready_server_class():
    import uvicorn

    class ReadyServer(uvicorn.Server):
        """uvicorn's server, printing the ready banner once its sockets listen (after the lifespan's startup)."""

        def __init__(self, config, settings: Settings) -> None:
            super().__init__(config)
            self.settings = settings

        async def startup(self, sockets=None) -> None:
            await super().startup(sockets=sockets)
            if self.should_exit or not self.started:
                return
            port = self.settings.port
            for server in self.servers:
                for sock in server.sockets or ():
                    port = sock.getsockname()[1]
            typer.echo(banner(self.settings, port))

    return ReadyServer


def banner(settings: Settings, port: int, width: int = 80) -> str:
    """What a person starting the server needs to know, once it listens: where to go, what it runs on, what
    is missing, and how to get in. Lines fit `width` columns except where one path alone is longer."""
    import textwrap

    from app.invocations import agents as engines

    base = settings.public_url or f"http://{_browsable(settings.host)}:{port}"
    rows: list[tuple[str, str]] = [
        ("Console", f"{base}/"),
        ("API docs", f"{base}/docs"),
        ("Data", str(settings.data_dir.resolve())),
        ("Database", _database(settings.resolved_database_url)),
    ]
    if settings.redis_url:
        rows.append(("Redis", _without_password(settings.redis_url)))
    if settings.driver == "docker":
        rows.append(("Driver", f"docker (each browser a container of {settings.docker_image})"))
    elif settings.driver == "swarm":
        rows.append(("Driver", f"swarm (each browser a service of {settings.docker_image})"))
    else:
        chromium = settings.resolved_chromium_path
        rows.append(
            (
                "Driver",
                f"local, Chromium {chromium}"
                if chromium
                else "local, Chromium NOT FOUND: browsers cannot start (apt-get install chromium, "
                "or set BCTRL_CHROMIUM_PATH)",
            )
        )
    ffmpeg = settings.resolved_ffmpeg_path
    rows.append(
        (
            "ffmpeg",
            f"{ffmpeg} (recordings as WebM)"
            if ffmpeg
            else "not found: recordings are kept as a ZIP of frames (apt-get install ffmpeg)",
        )
    )
    command = _command()
    venv = settings.resolved_browser_use_venv
    rows.append(
        (
            "browser-use",
            f"installed ({venv})"
            if engines.installed(venv)
            else f"not installed (optional, about {engines.SIZE}); to install it: {_keep(command + ' agents install')}",
        )
    )
    label = max(len(name) for name in (*(name for name, _ in rows), "API key", "Sign in")) + 2
    indent = " " * (2 + label)
    # `keys create` run elsewhere than the server would mint a key in another database: the command names
    # the settings that locate this server's, whole on one line, or split with `\` where it does not fit.
    parts, password = _key_command(settings, command)
    whole = " ".join(parts)
    mint = _keep(whole) if len(indent) + len(whole) <= width else "\n" + f"{_NBSP}\\\n".join(_keep(p) for p in parts)
    with_it = "with (password left out of the URL: add it)" if password else "with"
    if settings.api_key:
        rows.append(("API key", f"the value of BCTRL_API_KEY; mint more {with_it} {mint}"))
    else:
        rows.append(("API key", f"none set; mint one (printed once) {with_it} {mint}"))
    rows.append(("Sign in", "open the console and paste the key"))

    title = f"bctrl-server {_version()} is ready"
    lines = ["", title, "-" * len(title)]
    for name, value in rows:
        for number, segment in enumerate(value.split("\n")):  # a segment after the first starts a line
            wrapped = textwrap.wrap(
                segment.strip(" "),
                width=width,
                initial_indent=f"  {name:<{label}}" if number == 0 else indent,
                subsequent_indent=indent,
                break_long_words=False,
                break_on_hyphens=False,
            )
            lines.extend(line.replace(_NBSP, " ") for line in wrapped)
    lines.append("Stop it with Ctrl+C.")
    lines.append("")
    return "\n".join(lines)


_NBSP = "\u00a0"


def _keep(command: str) -> str:
    """A command the banner never splits over two lines (so it can be copied whole)."""
    return command.replace(" ", _NBSP)


def _key_command(settings: Settings, command: str) -> tuple[list[str], bool]:
    """`keys create` as the operator must type it to reach this server's database: after the settings that
    locate it when they are not the defaults (the URL without its password; True when it has one)."""
    import shlex

    if settings.database_url:
        url, password = _url_without_password(settings.database_url)
        return [f"BCTRL_DATABASE_URL={shlex.quote(url)}", f"{command} keys create"], password
    data_dir = settings.data_dir.resolve()
    if data_dir != Path("data").resolve():
        return [f"BCTRL_DATA_DIR={shlex.quote(str(data_dir))}", f"{command} keys create"], False
    return [f"{command} keys create"], False


def _url_without_password(url: str) -> tuple[str, bool]:
    from sqlalchemy.engine import URL, make_url

    parsed = make_url(url)
    query = {name: value for name, value in parsed.query.items() if not _secret_param(name)}
    # Not URL.set(password=None): it ignores None and keeps the password.
    bare = URL.create(parsed.drivername, parsed.username, None, parsed.host, parsed.port, parsed.database, query)
    return bare.render_as_string(hide_password=False), parsed.password is not None or query != dict(parsed.query)


def _secret_param(name: str) -> bool:
    """A query parameter that carries a credential (`password=`, `sslpassword=`, `token=`...)."""
    return any(word in name.lower() for word in ("password", "secret", "token", "key"))


def _browsable(host: str) -> str:
    """An address a browser on this machine can open: a wildcard bind is reached on loopback."""
    if host in ("0.0.0.0", "", "*"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def _database(url: str) -> str:
    """The URL without its password (SQLite: the file)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite {parsed.database}"
    return _url_without_password(url)[0]


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    query = "&".join(pair for pair in parts.query.split("&") if pair and not _secret_param(pair.split("=", 1)[0]))
    netloc = parts.netloc
    if parts.password is not None:
        user = f"{parts.username}@" if parts.username else ""
        host = parts.hostname or ""
        netloc = f"{user}{'[' + host + ']' if ':' in host else host}{':' + str(parts.port) if parts.port else ''}"
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def _command() -> str:
    """How this person ran bctrl-server (`.venv/bin/bctrl-server` after `make run`, or just the name on PATH)."""
    import os
    import shutil
    import sys
    from pathlib import Path

    argv0 = Path(sys.argv[0])
    if argv0.name != "bctrl-server" or not argv0.parent.name:
        return "bctrl-server"
    found = shutil.which("bctrl-server")
    if found and Path(found).resolve() == argv0.resolve():
        return "bctrl-server"
    relative = os.path.relpath(argv0)
    return str(argv0.resolve()) if relative.startswith("..") else relative


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
    """Create an API key and print it once; only its hash is stored. Says on stderr which database it used
    (BCTRL_DATA_DIR or BCTRL_DATABASE_URL, as the server's), and when that database did not exist yet."""
    from app.accounts.service import create_key, get_or_create_account

    async def work(db) -> str:
        acct = await get_or_create_account(db, account)
        return (await create_key(db, acct.id, name)).secret

    typer.echo(_with_db(work, create=True))


def _with_db(work, *, create: bool = False):
    """Run `work(db)` against the configured database (migrated first), as the key commands do. Says on
    stderr which database that is. A missing SQLite file is created (and said so) only when `create`;
    otherwise the command stops: a new, empty database has no keys to list or revoke."""
    from app.core.db import Database
    from app.core.migrate import upgrade

    settings = Settings()
    url = settings.resolved_database_url
    sqlite_file = _sqlite_file(url)
    if sqlite_file is not None and not sqlite_file.exists():
        hint = (
            f"Is BCTRL_DATA_DIR ({settings.data_dir.resolve()}) the server's? The server's ready banner "
            "prints the key command with its data directory."
        )
        if not create:
            typer.echo(f"No database at {sqlite_file}: nothing to do. {hint}", err=True)
            raise typer.Exit(1)
        typer.echo(f"No database at {sqlite_file}: creating a new one. {hint}", err=True)
    else:
        typer.echo(f"Database: {_database(url)}", err=True)
    settings.data_dir.mkdir(parents=True, exist_ok=True)

    async def run():
        await upgrade(url)
        db = Database(url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(run())


def _sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (None for another database, or SQLite in memory)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).resolve()


@keys.command("list")
def keys_list(
    account: str | None = typer.Option(None, help="Only this account's keys (by name)"),
    revoked: bool = typer.Option(False, "--revoked", help="Include revoked keys"),
) -> None:
    """List API keys (never their secrets): id, prefix, account, type, scopes, name, state."""
    from app.accounts.service import every_key, is_bootstrap
    from app.core import clock

    rows = _with_db(lambda db: every_key(db, account, include_revoked=revoked))
    now = clock.now()
    typer.echo("\t".join(("ID", "PREFIX", "ACCOUNT", "TYPE", "SCOPES", "NAME", "STATE", "LAST USED")))
    for key, acct in rows:
        state = (
            "revoked"
            if key.revoked_at
            else "expired"
            if key.expires_at and key.expires_at <= now
            else "bootstrap"
            if is_bootstrap(key)
            else "active"
        )
        kind = f"subaccount of {acct.parent_id}" if acct.parent_id else "organization"
        typer.echo(
            "\t".join(
                (
                    str(key.id),
                    key.prefix,
                    f"{acct.name} ({acct.id})",
                    kind,
                    ",".join(key.scopes or ["*"]),
                    key.name,
                    state,
                    clock.iso(key.last_used_at) if key.last_used_at else "-",
                )
            )
        )


@keys.command("revoke")
def keys_revoke(key: str = typer.Argument(..., help="The key's id, or its prefix as listed")) -> None:
    """Revoke a key at once: its next request is 401; the CDP sockets of the leases it made close within
    each server's sweep interval."""
    from app.accounts.service import revoke_by_operator
    from app.core.errors import DomainError

    try:
        row = _with_db(lambda db: revoke_by_operator(db, key))
    except DomainError as error:
        typer.echo(f"{error.code}: {error.message}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"revoked {row.id} ({row.prefix})")


@agents.command("install")
def agents_install() -> None:
    """Install the optional browser-use engine (about 360 MB) into its own virtualenv
    (BCTRL_BROWSER_USE_VENV, default DATA_DIR/agents/browser-use), with pip's progress; does nothing when it
    is there. A running server uses it from its next browserUse invocation on, without a restart."""
    import subprocess

    from app.invocations import agents as engines

    venv = Settings().resolved_browser_use_venv
    try:
        done = engines.install(venv, typer.echo)
    except KeyboardInterrupt:
        typer.echo("\nbrowser-use was not installed (interrupted); run this command again to install it.", err=True)
        raise typer.Exit(130) from None
    except subprocess.CalledProcessError as error:
        typer.echo(f"browser-use could not be installed ({error}); pip's output above says why.", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"browser-use is ready in {venv}" if done else f"browser-use is already installed in {venv}")


def main() -> None:
    cli()
