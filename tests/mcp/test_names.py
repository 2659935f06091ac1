"""The tool names are the platform's: each is the 0.3 SDK's resource path and method for the same REST
operation (`client.browsers.pages.open` calls POST /v1/browsers/{browser_id}/pages: bctrl_browsers_pages_open)."""

from __future__ import annotations

import re
from pathlib import Path

import bctrl

from app.mcp.names import TOOL_NAMES

GENERATED = Path(bctrl.__file__).parent / "_generated"
_CALL = re.compile(r'httpx_client\.(?:request|stream)\(\s*f?"([^"]*)",\s*method="([A-Z]+)"')


def sdk_operations() -> dict[tuple[str, str], str]:
    """(method, path) -> `bctrl_<resource path>_<method>` from the SDK's raw clients (the sync ones)."""
    found: dict[tuple[str, str], str] = {}
    for source in sorted(GENERATED.rglob("raw_client.py")):
        resources = source.parent.relative_to(GENERATED).parts
        text = source.read_text().split("class AsyncRaw")[0]
        for chunk in text.split("\n    def ")[1:]:
            name = chunk.split("(")[0]
            call = _CALL.search(chunk)
            if name.startswith("_") or call is None:
                continue
            path = "/" + re.sub(r"\{(?:quote_path_param|jsonable_encoder)\(([a-z_]+)\)\}", r"{\1}", call.group(1))
            found.setdefault((call.group(2), path), "_".join(("bctrl", *resources, name)))
    return found


def test_every_tool_is_named_as_the_sdk_names_its_operation():
    sdk = sdk_operations()
    assert len(sdk) > 150  # the parser still reads the SDK
    wrong = {key: (name, sdk.get(key)) for key, name in TOOL_NAMES.items() if sdk.get(key) != name}
    assert wrong == {}


def test_names_follow_the_platform_pattern_and_are_unique():
    assert all(re.fullmatch(r"bctrl_[a-z]+(_[a-z]+)+", name) for name in TOOL_NAMES.values())
    assert len(set(TOOL_NAMES.values())) == len(TOOL_NAMES)
    assert ("GET", "/v1/browsers/{browser_id}") in TOOL_NAMES
    assert not any("reveal" in name for name in TOOL_NAMES.values())
