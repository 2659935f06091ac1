"""Files in the current generation: `/v1/files` (space storage) and `/v1/runs/{id}/files` (a run's files).

Work in progress: the routers are registered in app/main.py; fill `routers`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
routers: tuple[APIRouter, ...] = (router,)
