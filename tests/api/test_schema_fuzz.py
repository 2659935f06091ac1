"""A bounded schemathesis run over /openapi.json: every operation, every check, a fixed budget and seed.

The server is a real subprocess on loopback (PostgreSQL, Redis, local Chromium) with two browser
slots, fuzzed through its published description with a real API key. Zero failures are allowed:
no 5xx, no response outside the description (status, media type, body schema, headers), no
schema-valid request refused and no schema-violating request accepted, 405 and OPTIONS with `Allow`.

Reproduce by hand (figures in the report's JSON):
    .venv/bin/pytest -q -s tests/api/test_schema_fuzz.py
Budget: BCTRL_FUZZ_EXAMPLES (default 30 cases per operation and phase), BCTRL_FUZZ_SEED (default 1).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

from tests.e2e.conftest import BIN, cluster

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = os.environ.get("BCTRL_FUZZ_EXAMPLES", "30")
SEED = os.environ.get("BCTRL_FUZZ_SEED", "1")

# Operations that cannot be fuzzed safely, each with its reason. Everything else is fuzzed.
EXCLUDED = {
    "POST /v1/ai-connections/{connection_id}/test": "calls the provider at the connection's baseUrl: fuzzed URLs would send traffic off loopback",
    "POST /v1/ai/credentials/{connection_id}/test": "the same route under its flat name",
    "POST /v1/spaces/{space_id}/runtimes/{runtime_id}/invocations": "runs a hosted AI agent, which calls an LLM provider off loopback (tests/ai use a stand-in)",
    "POST /v1/runtimes/{runtime_id}/invocations": "the same, flat route",
    "GET /v1/runs/{run_id}/events/stream": "an SSE stream of an active run stays open until the run ends, and the fuzzer reads each body to "
    "its end (streams: tests/e2e/test_streams.py; authorization: test_authz_matrix.py)",
    "GET /v1/runs/{run_id}/stream": "the same, for the combined stream",
    "GET /v1/events/stream": "an SSE stream of the account's events stays open (heartbeats) until the client leaves, and the "
    "fuzzer reads each body to its end (tests/current/test_events.py, tests/e2e/test_current_events.py)",
    "GET /v1/ai/models": "asks the endpoints of the account's saved AI credentials: fuzzed baseUrls would send traffic "
    "off loopback (and an endpoint that does not answer is a 502 by design; tests/current/test_ai.py)",
}


def test_fuzz_openapi_finds_nothing(tmp_path):
    # Two browser slots: runtimes the fuzzer starts beyond them get 429, which the description lists.
    with cluster(tmp_path, BCTRL_MAX_RUNTIMES="2") as servers:
        server = servers[0]
        report = tmp_path / "report"
        command = [
            str(BIN / "st"),
            "run",
            f"{server.url}/openapi.json",
            "-H",
            f"Authorization: Bearer {server.api_key}",
            "--checks",
            "all",
            "--max-examples",
            EXAMPLES,
            "--seed",
            SEED,
            # One worker: hypothesis parses lambdas (ast.parse) while describing strategies, and on
            # CPython 3.11.7 two threads doing so fail with "AST constructor recursion depth mismatch".
            "--workers",
            "1",
            "--no-shrink",
            "--request-timeout",
            "60",
            "--report",
            "json",
            "--report-json-path",
            str(report / "run.json"),
        ]
        for name in EXCLUDED:
            command += ["--exclude-name", name]
        env = {**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.fuzz_hooks", "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
        started = time.monotonic()
        run = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
        elapsed = time.monotonic() - started
    result = json.loads((report / "run.json").read_text())
    failures = {f["title"]: f["count"] for f in result["failures"]}
    figures = (
        f"fuzz: {result['operations']['tested']} of {result['operations']['total']} operations, "
        f"{result['test_cases']['generated']} cases, {len(EXCLUDED)} excluded, "
        f"failures {failures or 0}, errors {result['errors'] or 0}, {elapsed:.0f} s"
    )
    print(figures)
    assert run.returncode == 0 and not result["failures"] and not result["errors"], (
        f"{figures}\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}"
    )
    assert result["operations"]["tested"] == result["operations"]["total"] - len(EXCLUDED)
