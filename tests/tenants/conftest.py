"""The official 0.3 client (`AsyncBctrl`) over the in-process server of tests/conftest.py, on both backends."""

from __future__ import annotations

import uuid

import pytest
from bctrl import AsyncBctrl

from app.accounts.service import create_account, create_key


def sdk(server, secret: str, subaccount: str | None = None) -> AsyncBctrl:
    """The client as a user builds it; `subaccount` is its `bctrl_subaccount_id` (BCTRL-Subaccount-Id)."""
    return AsyncBctrl(
        token=secret,
        base_url="http://testserver",
        bctrl_subaccount_id=subaccount,
        httpx_client=server.anonymous(),
        max_retries=0,
    )


@pytest.fixture
async def org(server):
    """A fresh organization: (its key's secret, a client with it)."""
    account = await create_account(server.ctx.db, f"org-{uuid.uuid4().hex[:6]}")
    key = await create_key(server.ctx.db, account.id, "test")
    return key.secret, sdk(server, key.secret)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"
