"""Recordings in the current generation: `/v1/runs/{id}/recordings[/{id}]`, `/v1/browsers/{id}/recording`.

Work in progress: the routers are registered in app/main.py; fill `routers`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
routers: tuple[APIRouter, ...] = (router,)
