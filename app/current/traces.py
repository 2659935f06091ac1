"""`/v1/runs/{id}/trace` and `/v1/traces/{id}`: spans built from what a run recorded.

Work in progress: the routers are registered in app/main.py; fill `routers`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
routers: tuple[APIRouter, ...] = (router,)
