"""An S3-compatible store for the S3 object store's tests: moto's S3 server in a process of its own on
127.0.0.1, with authentication on (only the IAM user's access key is accepted), so a test can stop it
to play an unreachable store, and the test process's memory holds only what the client holds.

The first four requests are the setup (IAM user, access key, policy, bucket), made before the
server enforces signatures (moto's `INITIAL_NO_AUTH_ACTION_COUNT`); every later one must be signed."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import botocore.session
import httpx
import pytest

from tests.support import free_port

BUCKET = "bctrl-objects"
SETUP_REQUESTS = 4


class MotoProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT=str(SETUP_REQUESTS))
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{self.endpoint}/moto-api/", timeout=1)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("moto_server did not start") from None
                time.sleep(0.1)
        session = botocore.session.get_session()
        admin = dict(
            endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id="a", aws_secret_access_key="b"
        )
        iam = session.create_client("iam", **admin)
        iam.create_user(UserName="objects")
        key = iam.create_access_key(UserName="objects")["AccessKey"]
        policy = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}'
        iam.put_user_policy(UserName="objects", PolicyName="s3", PolicyDocument=policy)
        self.access_key_id = key["AccessKeyId"]
        self.secret_access_key = key["SecretAccessKey"]
        self.client = session.create_client(
            "s3",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
        )
        self.client.create_bucket(Bucket=BUCKET)  # the fourth setup request, already signed

    def settings(self, prefix: str, **overrides) -> dict:
        """The BCTRL_STORAGE_* settings of a store under `prefix` in the bucket."""
        values = dict(
            storage_url=f"s3://{BUCKET}/{prefix}",
            storage_endpoint=self.endpoint,
            storage_region="us-east-1",
            storage_access_key_id=self.access_key_id,
            storage_secret_access_key=self.secret_access_key,
        )
        values.update(overrides)
        return values

    def keys(self, prefix: str = "") -> list[str]:
        listed = self.client.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for o in listed.get("Contents", []))

    def uploads(self) -> list[dict]:
        return self.client.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture(scope="session")
def moto() -> MotoProcess:
    server = MotoProcess()
    yield server
    server.stop()


@pytest.fixture
def prefix() -> str:
    """A prefix of the bucket of this test's own."""
    return f"t-{uuid.uuid4().hex[:8]}"


class Cuttable:
    """A TCP forwarder on 127.0.0.1 to the store: `cut()` drops every connection and refuses new
    ones, as a store that went unreachable; the bucket behind it stays inspectable."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.writers: set = set()
        self.server = None
        self.endpoint = ""

    async def start(self) -> Cuttable:
        import asyncio

        async def pump(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def handle(reader, writer):
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
            self.writers.update((writer, up_writer))
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        self.endpoint = f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"
        return self

    def cut(self) -> None:
        self.server.close()
        for writer in self.writers:
            writer.transport.abort()
        self.writers.clear()
