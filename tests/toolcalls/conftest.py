"""Tool call tests use the AI tier's stand-in LLM (scripted afresh for each test); the stagehand tests
also take its guard against traffic off this machine (the sign-in tests cannot: Chromium's own
password services try to call home on a login form, refused by the egress proxy)."""

from tests.ai.conftest import fresh_script, llm  # noqa: F401
