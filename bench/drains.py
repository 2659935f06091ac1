"""Drain export: events per second from commit to an https receiver (NDJSON, signature checked by the
receiver) and to an OTLP/HTTP collector (protobuf decoded), in-process on SQLite or PostgreSQL.

A burst of `--events` console events is committed (100 per transaction) on one run while the drain
follows (how long after the last commit the receiver has it all), then the same number waits while the
drain is disabled and is exported when it is enabled again: the export rate, beside the commit rate of
the same burst (the baseline). `python -m bench.drains [--pg URL]`.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from standardwebhooks import Webhook, WebhookVerificationError

from app.accounts.service import Principal, create_account, create_key
from app.core import clock, ids
from app.core.config import Settings
from app.drains import service as drains
from app.runs import events
from app.runs.models import Run
from app.spaces import service as spaces


class Counting:
    def __init__(self, otlp: bool) -> None:
        self.count = 0
        self.secret: str | None = None
        self.done = threading.Event()
        self.want = 0
        me = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if otlp:
                    message = ExportLogsServiceRequest()
                    message.ParseFromString(body)
                    n = sum(len(sl.log_records) for rl in message.resource_logs for sl in rl.scope_logs)
                else:
                    try:
                        Webhook(me.secret).verify(body, {k.lower(): v for k, v in self.headers.items()})
                    except WebhookVerificationError:
                        self.send_response(401)
                        self.end_headers()
                        return
                    except ValueError:
                        pass  # NDJSON is not one JSON document
                    n = body.count(b"\n")
                me.count += n
                if me.count >= me.want:
                    me.done.set()
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


async def _run(kind: str, count: int, pg: str | None) -> tuple[float, float, float]:
    from tests.conftest import running_app  # the in-process app with its lifespan (pump included)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            database_url=pg,
            drain_egress="private",
            drains_poll_seconds=0.05,
            sweep_interval_seconds=5.0,
        )
        async with running_app(settings) as server:
            ctx = server.ctx
            account = await create_account(ctx.db, f"bench-{uuid.uuid4().hex[:6]}")
            key = await create_key(ctx.db, account.id, "bench")
            receiver = Counting(otlp=kind == "otlp")
            receiver.want = count
            destination = {"type": "https", "url": receiver.url}
            if kind == "otlp":
                destination = {"type": "otlp", "endpoint": receiver.url}
            principal = Principal(account_id=account.id, key_id=key.id)
            space = await spaces.default_space(ctx, principal)
            drain, secret = await drains.create(
                ctx,
                principal,
                drains.DrainSpec(destination=destination, categories=["console"]),
            )
            receiver.secret = secret
            async with ctx.db.transaction() as s:
                now = clock.now()
                run = Run(
                    id=ids.new_id(),
                    account_id=account.id,
                    space_id=space.id,
                    runtime_id=ids.new_id(),
                    runtime_type="browser",
                    status="completed",
                    created_at=now,
                    started_at=now,
                    finished_at=now,
                )
                s.add(run)
            # 1. Live: the drain follows the writer (the lag after the last commit is what it adds).
            started = time.monotonic()
            await _burst(ctx, run.id, 0, count)
            committed = time.monotonic() - started
            await asyncio.to_thread(receiver.done.wait, 120)
            lag = time.monotonic() - started - committed
            # 2. Backlog: the same number of events waiting while the drain was disabled, then enabled.
            drain = await drains.update(ctx, drain, {"enabled": False})
            receiver.done.clear()
            receiver.want = 2 * count
            await _burst(ctx, run.id, count, count)
            started = time.monotonic()
            await drains.update(ctx, drain, {"enabled": True})
            await asyncio.to_thread(receiver.done.wait, 120)
            exported = time.monotonic() - started
            receiver.httpd.shutdown()
            assert receiver.count >= 2 * count, receiver.count
            return count / committed, lag, count / exported


async def _burst(ctx, run_id, start: int, count: int) -> None:
    for first in range(start, start + count, 100):
        async with ctx.db.transaction() as s:
            for i in range(first, min(start + count, first + 100)):
                await events.append(s, run_id, "console.log", "console", {"i": i})


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--pg", default=None, help="a PostgreSQL URL (an empty database); SQLite otherwise")
    args = parser.parse_args(argv)
    for kind in ("https", "otlp"):
        commit_rate, lag, export_rate = asyncio.run(_run(kind, args.events, args.pg))
        print(
            f"drains {kind}: live, {args.events} events committed at {commit_rate:.0f}/s reach the receiver "
            f"{lag * 1000:.0f} ms after the last commit; a backlog of {args.events} exports at "
            f"{export_rate:.0f} events/s ({export_rate / commit_rate:.1f}x the commit rate)"
        )


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
