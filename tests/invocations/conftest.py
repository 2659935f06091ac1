"""The invocation tests share the AI tier's fixtures: the stand-in LLM (scripted afresh for each test)
and the guard that fails any test whose code tries to reach an address off this machine."""

from tests.ai.conftest import fresh_script, llm, no_traffic_off_this_machine  # noqa: F401
