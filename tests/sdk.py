"""The official 0.3 client (`AsyncBctrl`) against an in-process server, as a fresh account of its own."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from bctrl import AsyncBctrl

from app.accounts.service import create_account, create_key


@asynccontextmanager
async def sdk_of(server, name: str = "sdk") -> AsyncIterator[AsyncBctrl]:
    """A client of a new account named `<name>-<random>`; `account_id` (str), `http` (the raw client)
    and `raw_headers` are attached for the requests a test makes outside the SDK."""
    account = await create_account(server.ctx.db, f"{name}-{uuid.uuid4().hex[:6]}")
    key = await create_key(server.ctx.db, account.id, "test")
    transport = httpx.ASGITransport(app=server.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as http:
        client = AsyncBctrl(token=key.secret, base_url="http://testserver", httpx_client=http, max_retries=0)
        client.account_id = str(account.id)
        client.http = http
        client.raw_headers = {"Authorization": f"Bearer {key.secret}", "BCTRL-Version": "2026-10-03"}
        yield client
