"""The authorization matrix, generated from the published routes (app.openapi()), so a new route is in it.

For every operation whose path names a resource, account B sends account A's real ids (space, runtime,
run, lease, artifact, file, invocation, AI connection, live viewer) and must get 404 in the error
envelope: never 200, 403 or 500, and nothing of A's in the answer. Every operation that needs an API
key answers 401 without one and with a wrong one; operations authenticated by a link's or a lease's
`token` answer 401 without it and with a wrong one. Afterwards A's resources are all unchanged.

A path parameter the generator cannot fill, or a request body it cannot build, fails the test: it is
never skipped silently.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from app.artifacts import service as artifacts
from tests.e2e.extension_packages import marker_zip

# The data layer and the core flows also run on the embedded defaults (tests/conftest.py).
pytestmark = pytest.mark.sqlite

ENVELOPE = {"error", "code", "requestId", "details"}
CURRENT = {"BCTRL-Version": "2026-10-03"}
# Path parameters naming one of A's resources, by name (`connection_id` is a lease's, except under /v1/ai).
RESOURCE_PARAMS = {
    "space_id": "space",
    "runtime_id": "runtime",
    "browser_id": "runtime",
    "run_id": "run",
    "artifact_id": "artifact",
    "file_id": "file",
    "invocation_id": "invocation",
    "viewer_id": "viewer",
    "view_id": "view",
    "event_id": "event",
    "key_id": "api_key",
    # A run's trace and its one recording are named by the run's id (docs/decisions.md).
    "trace_id": "run",
    "recording_id": "run",
    "proxy_id": "proxy",
    "extension_id": "extension",
    "secret": "secret",
    "agent_id": "agent",
    "tool_ref": "tool",
    "task_id": "task",
    "conversation_id": "conversation",
    "tool_call_id": "tool_call",
    "subaccount_id": "subaccount",
    "webhook_id": "webhook",
    "delivery_id": "delivery",
    "drain_id": "drain",
    "recipient_id": "recipient",
}
# Path parameters that name no resource, and the value that reaches the route's own checks.
PLAIN_PARAMS = {
    "seq": "0",
    "rest": "/version",
    "page_id": "0123456789ABCDEF0123456789ABCDEF",
    "pool_id": "pool",
    "version": "1",
}


def resource_of(path: str, name: str) -> str | None:
    if name == "connection_id":
        return "ai_connection" if path.startswith("/v1/ai") else "connection"
    return RESOURCE_PARAMS.get(name)


def sample(schema: dict[str, Any], components: dict[str, Any], where: str) -> Any:
    """A minimal value that satisfies `schema`: required properties only, smallest allowed values."""
    if "$ref" in schema:
        return sample(components[schema["$ref"].rsplit("/", 1)[1]], components, where)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in schema and "properties" not in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return sample(options[0], components, where)
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        required = set(schema.get("required", []))
        for branch in schema.get("anyOf", [])[:1]:  # an object's alternatives: satisfy the first
            required |= set(branch.get("required", []))
        return {
            name: sample(sub, components, f"{where}.{name}")
            for name, sub in schema.get("properties", {}).items()
            if name in required
        }
    if kind == "string":
        value = "x" * max(1, schema.get("minLength", 1))
        if "pattern" in schema and not re.search(schema["pattern"], value) and schema.get("examples"):
            value = schema["examples"][0]
        if "pattern" in schema and not re.search(schema["pattern"], value):
            pytest.fail(f"cannot build a value for {where} (pattern {schema['pattern']}): extend sample()")
        return value
    if kind == "integer" or kind == "number":
        return max(0, int(schema.get("minimum", 0)))
    if kind == "boolean":
        return False
    if kind == "array":
        return [sample(schema["items"], components, f"{where}[]")] * schema.get("minItems", 0)
    if kind is None and not set(schema) - {"title", "description", "examples", "default"}:
        return "x"  # any JSON value
    pytest.fail(f"cannot build a value for {where}: {schema}")


def request_body(op: dict[str, Any], components: dict[str, Any], where: str) -> dict[str, Any]:
    body = op.get("requestBody")
    if not body or not body.get("required"):
        return {}
    content = body["content"]
    if "application/json" in content:
        return {"json": sample(content["application/json"]["schema"], components, where)}
    if "multipart/form-data" in content:
        return {"files": {"file": ("matrix.txt", b"matrix", "text/plain")}}
    pytest.fail(f"{where}: no way to build a {sorted(content)} body")


def operations(schema: dict[str, Any]):
    for path, item in schema["paths"].items():
        for method, op in item.items():
            yield method.upper(), path, op


async def account_a(server, api, runtime: dict) -> dict[str, str]:
    """A's real resources, one of each kind a path can name."""
    ids = {"runtime": runtime["id"], "run": runtime["activeRunId"], "space": runtime["spaceId"]}
    ai = await api.post(
        "/v1/ai-connections",
        json={
            "label": "a",
            "provider": "openai-compatible",
            "baseUrl": "http://127.0.0.1:9",
            "apiKey": "sk-a",
            "defaultModel": "m",
        },
    )
    assert ai.status_code == 201, ai.text
    ids["ai_connection"] = ai.json()["id"]
    # Its provider is a closed loopback port: the invocation fails at once and frees the runtime.
    invocation = await api.post(
        f"/v1/runtimes/{runtime['id']}/invocations",
        json={"action": "act", "instruction": "x", "connection": ids["ai_connection"]},
    )
    assert invocation.status_code == 202, invocation.text
    ids["invocation"] = invocation.json()["id"]
    waited = await api.post(f"/v1/invocations/{ids['invocation']}/wait", json={"timeoutMs": 30_000})
    assert waited.json()["timedOut"] is False, waited.text
    # A task of the built-in agent on A's runtime (so it launches no browser); its model is the closed
    # loopback port, so it fails at once and frees the runtime.
    task = await api.post(
        "/v1/tasks",
        headers=CURRENT,
        json={"agent": "browser", "input": "x", "spaceId": ids["space"], "metadata": {"browserId": runtime["id"]}},
    )
    assert task.status_code == 202, task.text
    ids["task"], ids["conversation"] = task.json()["id"], task.json()["conversationId"]
    ended = await api.get(f"/v1/tasks/{ids['task']}", params={"wait": 30}, headers=CURRENT)
    assert ended.json()["status"] == "failed", ended.text
    lease = await api.post(f"/v1/spaces/{ids['space']}/runtimes/{runtime['id']}/connections", json={"protocol": "cdp"})
    assert lease.status_code == 201, lease.text
    ids["connection"] = lease.json()["id"]
    uploaded = await api.post(
        "/v1/files", params={"spaceId": ids["space"]}, files={"file": ("a.txt", b"account a's bytes", "text/plain")}
    )
    assert uploaded.status_code == 201, uploaded.text
    ids["file"] = uploaded.json()["id"]
    source = server.settings.data_dir / f"matrix-{uuid.uuid4().hex}"
    source.write_bytes(b"account a's artifact")
    artifact = await artifacts.record(
        server.ctx,
        run_id=uuid.UUID(ids["run"]),
        kind="download",
        name="a.bin",
        content_type="application/octet-stream",
        source=source,
    )
    ids["artifact"] = str(artifact.id)
    live = await api.post(f"/v1/runs/{ids['run']}/live", json={})
    assert live.status_code == 200, live.text
    ids["viewer"] = live.json()["viewerId"]
    events = await api.get(f"/v1/runs/{ids['run']}/events", params={"limit": 1})
    assert events.status_code == 200 and events.json()["data"], events.text
    ids["event"] = events.json()["data"][0]["id"]
    view = await api.post("/v1/views", json={"scope": {"runId": ids["run"]}})
    assert view.status_code == 201, view.text
    ids["view"] = view.json()["id"]
    proxy = await api.post("/v1/proxies", json={"url": "http://u:p@127.0.0.1:9"})
    assert proxy.status_code == 201, proxy.text
    ids["proxy"] = proxy.json()["id"]
    extension = await api.post(
        "/v1/browser/extensions", files={"file": ("a.zip", marker_zip("account a"), "application/zip")}
    )
    assert extension.status_code == 201, extension.text
    ids["extension"] = extension.json()["id"]
    secret = await api.post("/v1/secrets", json={"path": "matrix/a", "type": "value", "value": "account a's value"})
    assert secret.status_code == 201, secret.text
    ids["secret"] = secret.json()["id"]
    # A's built-in agent (no LLM asked) and a webhook tool nothing is ever sent to.
    builtin = await api.get("/v1/agents", params={"spaceId": ids["space"], "name": "browser"}, headers=CURRENT)
    assert builtin.status_code == 200 and builtin.json()["data"], builtin.text
    ids["agent"] = builtin.json()["data"][0]["id"]
    tool = await api.post(
        "/v1/tools",
        headers=CURRENT,
        json={
            "name": "matrix_a",
            "spaceId": ids["space"],
            "implementation": {"type": "webhook", "url": "http://127.0.0.1:9/a"},
            "inputSchema": {"type": "object"},
            "outputSchema": {"type": "object"},
        },
    )
    assert tool.status_code == 201, tool.text
    ids["tool"] = tool.json()["id"]
    # A call of it: nothing listens on port 9, so it ends failed, and its record stays.
    called = await api.post(
        f"/v1/tools/{ids['tool']}/calls",
        headers=CURRENT,
        json={"input": {}},
        params={"wait": 30, "spaceId": ids["space"]},
    )
    assert called.status_code in (200, 201, 202), called.text
    ids["tool_call"] = called.json()["id"]
    sub = await api.post("/v1/subaccounts", headers=CURRENT, json={"name": "matrix-a"})
    assert sub.status_code == 201, sub.text
    ids["subaccount"] = sub.json()["id"]
    # A webhook and a drain aimed at a closed loopback port (allowed here by the test's egress settings):
    # whatever they send fails there, and their records stay.
    webhook = await api.post(
        "/v1/webhooks", headers=CURRENT, json={"url": "http://127.0.0.1:9/a", "events": ["run.completed"]}
    )
    assert webhook.status_code == 201, webhook.text
    ids["webhook"] = webhook.json()["id"]
    delivery = await api.post(f"/v1/webhooks/{ids['webhook']}/test", headers=CURRENT, json={})
    assert delivery.status_code in (200, 201), delivery.text
    ids["delivery"] = delivery.json()["id"]
    drain = await api.post(
        "/v1/drains", headers=CURRENT, json={"destination": {"type": "https", "url": "http://127.0.0.1:9/a"}}
    )
    assert drain.status_code == 201, drain.text
    ids["drain"] = drain.json()["id"]
    recipient = await api.post(
        "/v1/notification-recipients", headers=CURRENT, json={"type": "email", "value": "a@example.com"}
    )
    assert recipient.status_code == 201, recipient.text
    ids["recipient"] = recipient.json()["id"]
    key = await api.post("/v1/api-keys", json={"name": "a"})
    assert key.status_code == 201, key.text
    ids["api_key"] = key.json()["data"]["id"]
    return ids


async def test_authorization_matrix(server, api, monkeypatch):
    monkeypatch.setattr(server.settings, "webhook_egress", "private")
    monkeypatch.setattr(server.settings, "drain_egress", "private")
    schema = server.app.openapi()
    components = schema["components"]["schemas"]
    space = (await api.post("/v1/spaces", json={"name": "account a"})).json()["id"]
    # A seed runtime: the flat start would hold the runtime with its run connection, refusing A's lease.
    created = await api.post(f"/v1/spaces/{space}/runtimes", json={})
    assert created.status_code == 201, created.text
    runtime = created.json()
    try:
        ids = await account_a(server, api, runtime)
        status = (await api.get(f"/v1/runtimes/{ids['runtime']}")).json()["status"]
        wrong_key = server.anonymous(headers={"Authorization": f"Bearer bctrl_{uuid.uuid4().hex}"})
        async with await server.client("account b") as b, server.anonymous() as nobody, wrong_key:
            problems: list[str] = []
            cases = 0
            cross_routes = 0
            for method, path, op in operations(schema):
                where = f"{method} {path}"
                params = op.get("parameters", [])
                token_route = any(p["in"] == "query" and p["name"] == "token" for p in params)
                filled, named = {}, set()
                for p in (p for p in params if p["in"] == "path"):
                    kind = resource_of(path, p["name"])
                    if kind is not None:
                        filled[p["name"]], named = ids[kind], named | {kind}
                    elif p["name"] in PLAIN_PARAMS:
                        filled[p["name"]] = PLAIN_PARAMS[p["name"]]
                    else:
                        pytest.fail(f"{where}: no value for path parameter {p['name']!r}: extend RESOURCE_PARAMS")
                url = path.format(**filled)
                extra = request_body(op, components, where)

                async def check(client, expected: int, label: str, **kw) -> None:
                    nonlocal cases
                    cases += 1
                    r = await client.request(method, url, **{**extra, **kw})
                    body = r.json() if r.headers.get("content-type", "").startswith("application/json") else None
                    if r.status_code != expected or not isinstance(body, dict) or set(body) != ENVELOPE:
                        problems.append(f"{label} {where}: {r.status_code} {r.text[:200]}")
                        return
                    leaked = [k for k, v in ids.items() if k not in named and v in r.text]
                    if leaked:
                        problems.append(f"{label} {where}: the answer names A's {leaked}")

                if op.get("security"):
                    await check(nobody, 401, "no key")
                    await check(wrong_key, 401, "wrong key")
                    if named:
                        cross_routes += 1
                        await check(b, 404, "B with A's ids")
                elif token_route:
                    await check(b, 401, "no token")
                    await check(b, 401, "wrong token", params={"token": "x" * 40})
                elif named:
                    pytest.fail(f"{where} names a resource but requires neither a key nor a token")
            print(
                f"authz matrix ({server.settings.database_url and 'postgres' or 'sqlite'}): "
                f"{len(list(operations(schema)))} operations, {cross_routes} with A's ids, {cases} cases"
            )
            assert not problems, "\n".join(problems)
            assert cross_routes >= 60, "the generator found far fewer routes with ids than the API has"

        # Nothing B did changed A's resources.
        assert (await api.get(f"/v1/runtimes/{ids['runtime']}")).json()["status"] == status
        lease = (
            await api.get(f"/v1/spaces/{ids['space']}/runtimes/{ids['runtime']}/connections/{ids['connection']}")
        ).json()
        assert lease["status"] == "active", lease
        for url in (
            f"/v1/spaces/{ids['space']}",
            f"/v1/files/{ids['file']}",
            f"/v1/ai-connections/{ids['ai_connection']}",
            f"/v1/invocations/{ids['invocation']}",
            f"/v1/runs/{ids['run']}/artifacts/{ids['artifact']}",
        ):
            assert (await api.get(url)).status_code == 200, url
        revoked = (await api.get(f"/v1/runs/{ids['run']}/events", params={"type": "live.revoked"})).json()
        assert revoked["data"] == [], "B revoked A's viewer"
    finally:
        await api.post(f"/v1/spaces/{space}/runtimes/{runtime['id']}/stop")
