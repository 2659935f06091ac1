"""The account surface of the current generation: whoami, help, account, API keys.

Work in progress: the routers are registered in app/main.py; fill `routers`."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter()
routers: tuple[APIRouter, ...] = (router,)
