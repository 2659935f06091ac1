"""`/v1/events` (list, get, stream) and the typed frames of `/v1/runs/{id}/stream` in the current generation.

Work in progress: the routers are registered in app/main.py; fill `routers`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
routers: tuple[APIRouter, ...] = (router,)
