"""`/v1/views`: scoped, expiring, revocable links to a page showing live, events, recordings, trace, files.

Work in progress: the routers are registered in app/main.py; fill `routers`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
routers: tuple[APIRouter, ...] = (router,)
