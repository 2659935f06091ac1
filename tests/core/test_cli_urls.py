"""What the ready banner and the key commands print of a database or Redis URL: never a credential, in
the user part or in the query (`sslpassword=`, `password=`, `token=`)."""

from __future__ import annotations

from app.cli import _url_without_password, _without_password


def test_database_urls_lose_every_credential():
    shown, hidden = _url_without_password("postgresql+asyncpg://u:pw1@h:5432/db?sslpassword=pw2&ssl=require")
    assert hidden and "pw1" not in shown and "pw2" not in shown and "ssl=require" in shown
    assert _url_without_password("postgresql+asyncpg://u@h/db") == ("postgresql+asyncpg://u@h/db", False)


def test_redis_urls_lose_every_credential():
    assert _without_password("redis://:pw1@h:6379/0?password=pw2&db=1") == "redis://h:6379/0?db=1"
    assert _without_password("redis://h:6379/0") == "redis://h:6379/0"
