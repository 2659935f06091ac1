"""How many operations of the installed bctrl SDK (the 0.3 wheel's generated clients) reach a route here.

    python -m bench.contract [--base-url URL]

Reads every `METHOD path` of the SDK's synchronous raw clients, sends each with `BCTRL-Version:
2026-10-03`, random UUIDs for the path's ids and an empty JSON body, and counts an operation as served
unless it answers 405, or 404 with "No such route" or `resource.not_found` (a route would answer
anything else for a random id: 400, 401, 404 with a resource's own code, 422...). Without
--base-url it starts `bctrl-server serve` on embedded defaults in a temporary data directory.
Prints the total and the unserved operations grouped by client.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

import httpx

CALL = re.compile(r'(f?)"(v1/[^"]*)",\s*method="([A-Z]+)"')
PARAM = re.compile(r"\{[^}]*\}")


def operations() -> list[tuple[str, str, str]]:
    """(client, method, path) of every operation the SDK's synchronous raw clients send."""
    import bctrl

    generated = Path(bctrl.__file__).parent / "_generated"
    found = set()
    for raw in generated.rglob("raw_client.py"):
        text = raw.read_text()
        sync_part = text.split("class AsyncRaw", 1)[0]
        client = raw.parent.relative_to(generated).as_posix()
        for _, path, method in CALL.findall(sync_part):
            found.add((client, method, re.sub(r"\{quote_path_param\((\w+)\)\}", r"{\1}", path)))
    return sorted(found)


def served(client: httpx.Client, method: str, url: str, body: dict | None) -> bool:
    """Only the status and, for a 404, the body are read: a stream (SSE) or a long poll that does not
    answer within the client's timeout is a route."""
    try:
        with client.stream(method, url, json=body) as answer:
            if answer.status_code == 405:
                return False
            if answer.status_code == 404:
                text = answer.read().decode(errors="replace")
                return "No such route" not in text and "resource.not_found" not in text
            return True
    except httpx.TimeoutException:
        return True


def count(base_url: str, key: str) -> tuple[int, dict[str, list[str]]]:
    missing: dict[str, list[str]] = defaultdict(list)
    total = 0
    headers = {"Authorization": f"Bearer {key}", "BCTRL-Version": "2026-10-03"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for name, method, path in operations():
            total += 1
            url = "/" + PARAM.sub(lambda _: str(uuid.uuid4()), path)
            body = {} if method in ("POST", "PUT", "PATCH") else None
            if not served(client, method, url, body):
                missing[name].append(f"{method} /{path}")
    return total, missing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--base-url", help="a running server (its key in BCTRL_API_KEY)")
    args = parser.parse_args()
    if args.base_url:
        total, missing = count(args.base_url, os.environ["BCTRL_API_KEY"])
    else:
        key = "bctrl_" + secrets.token_urlsafe(24)
        port = 8700 + secrets.randbelow(200)
        with tempfile.TemporaryDirectory() as data:
            env = {**os.environ, "BCTRL_API_KEY": key, "BCTRL_DATA_DIR": data, "BCTRL_PORT": str(port)}
            server = subprocess.Popen(
                [str(Path(sys.executable).parent / "bctrl-server"), "serve"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                for _ in range(600):
                    try:
                        if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                    time.sleep(0.1)
                total, missing = count(base, key)
            finally:
                server.terminate()
                server.wait(timeout=30)
    unserved = sum(len(v) for v in missing.values())
    print(f"served {total - unserved} of {total} operations of the installed bctrl SDK")
    for name, ops in sorted(missing.items()):
        print(f"  not served, {name} ({len(ops)}): " + ", ".join(ops[:4]) + (" ..." if len(ops) > 4 else ""))


if __name__ == "__main__":
    main()
