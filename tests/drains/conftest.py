"""Drains against receivers started here on 127.0.0.1, speaking the real protocols: an https-style
receiver checking Standard Webhooks signatures (plain http on loopback), an OTLP/HTTP collector decoding
the real protobuf, and moto's S3 server with its authentication switched on. The servers allow loopback
destinations (BCTRL_DRAIN_EGRESS=private) and retry fast."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from bctrl import AsyncBctrl
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from standardwebhooks import Webhook, WebhookVerificationError

from tests.conftest import fresh_pg_database, make_settings, running_app
from tests.sdk import sdk_of
from tests.support import free_port

FAST = dict(
    drain_egress="private",
    drains_poll_seconds=0.1,
    drains_retry_base_seconds=0.2,
    drains_retry_max_seconds=0.5,
    drains_timeout_seconds=5.0,
)


@pytest.fixture(scope="session", params=["postgres", "sqlite"])
async def dserver(request, tmp_path_factory):
    backend = request.param
    data_dir = tmp_path_factory.mktemp(f"drains-{backend}")
    if backend == "postgres":
        async with fresh_pg_database() as url, running_app(make_settings(data_dir, backend, url, **FAST)) as srv:
            yield srv
    else:
        async with running_app(make_settings(data_dir, backend, None, **FAST)) as srv:
            yield srv


@pytest.fixture
async def sdk(dserver) -> AsyncIterator[AsyncBctrl]:
    async with sdk_of(dserver, "drains") as client:
        yield client


class Receiver:
    """A small HTTP server on 127.0.0.1 in a thread; `handle(path, headers, body) -> status`."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_next = 0  # answer 500 to this many requests
        self.slow_next = 0  # hold this many requests `slow_seconds` before taking them
        self.slow_seconds = 3.0
        self.slow_started = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                headers = {k.lower(): v for k, v in self.headers.items()}
                if receiver.slow_next > 0:
                    receiver.slow_next -= 1
                    receiver.slow_started.set()
                    time.sleep(receiver.slow_seconds)
                with receiver.lock:
                    if receiver.fail_next > 0:
                        receiver.fail_next -= 1
                        status = 500
                    else:
                        status = receiver.handle(self.path, headers, body)
                try:
                    self.send_response(status)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:
                    pass  # the sender went away (a server stopped mid-delivery)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        self.requests.append((path, headers, body))
        return 200

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class SignedReceiver(Receiver):
    """Takes a batch only when its Standard Webhooks signature verifies under `secret`."""

    secret: str | None = None

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[tuple[str, list[dict]]] = []  # (webhook-id, events)
        self.bad_signatures = 0

    def handle(self, path, headers, body):
        import orjson

        try:
            Webhook(self.secret).verify(body, headers)
        except WebhookVerificationError:
            self.bad_signatures += 1
            return 401
        except ValueError:
            pass  # verified; verify() then parses the body as one JSON document, and NDJSON is several
        self.requests.append((path, headers, body))
        self.batches.append((headers["webhook-id"], [orjson.loads(line) for line in body.splitlines() if line]))
        return 200

    def events(self) -> list[dict]:
        """Every event, once per webhook-id (a retried batch that got through twice counts once)."""
        seen: set[str] = set()
        out: list[dict] = []
        for batch_id, events in list(self.batches):
            if batch_id not in seen:
                seen.add(batch_id)
                out += events
        return out


class OtlpReceiver(Receiver):
    def __init__(self) -> None:
        super().__init__()
        self.logs: list[ExportLogsServiceRequest] = []
        self.traces: list[ExportTraceServiceRequest] = []

    def handle(self, path, headers, body):
        if headers.get("content-type") != "application/x-protobuf":
            return 415
        self.requests.append((path, headers, body))
        if path == "/v1/logs":
            message = ExportLogsServiceRequest()
            message.ParseFromString(body)
            self.logs.append(message)
        elif path == "/v1/traces":
            message = ExportTraceServiceRequest()
            message.ParseFromString(body)
            self.traces.append(message)
        else:
            return 404
        return 200

    def records(self):
        return [r for m in self.logs for rl in m.resource_logs for sl in rl.scope_logs for r in sl.log_records]

    def spans(self):
        return [s for m in self.traces for rs in m.resource_spans for ss in rs.scope_spans for s in ss.spans]


@pytest.fixture
def signed_receiver():
    receiver = SignedReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def otlp_receiver():
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def moto_s3():
    """moto's S3 server on 127.0.0.1 with authentication on: an IAM user with an access key allowed
    s3:* on one bucket; requests signed with anything else are refused (403)."""
    import botocore.session
    from moto import settings as moto_settings
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    session = botocore.session.get_session()
    admin = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b")
    iam = session.create_client("iam", **admin)
    iam.create_user(UserName="drainer")
    key = iam.create_access_key(UserName="drainer")["AccessKey"]
    policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
    iam.put_user_policy(UserName="drainer", PolicyName="s3", PolicyDocument=policy)
    s3 = session.create_client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key["AccessKeyId"],
        aws_secret_access_key=key["SecretAccessKey"],
    )
    s3.create_bucket(Bucket="drained")
    before = moto_settings.INITIAL_NO_AUTH_ACTION_COUNT
    moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = 0  # from now on every request must be signed by a known key
    try:
        yield {"endpoint": endpoint, "key": key, "client": s3}
    finally:
        moto_settings.INITIAL_NO_AUTH_ACTION_COUNT = before
        server.stop()
