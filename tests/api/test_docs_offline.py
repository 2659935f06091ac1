"""The API reference's words: every operation has a real title (not its function's name), every group says
which API generation it belongs to, and the description explains the three generations. The page itself
is rendered offline in headless Chromium by tests/e2e/test_first_run.py."""

from __future__ import annotations

import re

import pytest

from app.core.config import Settings
from app.core.generation import CURRENT
from app.core.titles import TITLES
from app.main import create_app


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return create_app(Settings(data_dir=tmp_path_factory.mktemp("docs"))).openapi()


def test_every_operation_has_a_title_in_words(spec):
    function_like = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            title = operation.get("summary") or ""
            words = title.split()
            # FastAPI's own: the function's name in Title Case ("Create Seed", "List Api Keys", "Healthz").
            if (
                not words
                or (len(words) > 1 and all(w[:1].isupper() for w in words if w[:1].isalpha()))
                or re.search(r"\b(Seed|Flat|Healthz|Readyz|Whoami|Api|Pdf|Rpc)\b", title)
            ):
                function_like.append(f"{method.upper()} {path}: {title!r}")
    assert function_like == []
    assert spec["paths"]["/healthz"]["get"]["summary"] == "Liveness check"
    assert spec["paths"]["/v1/spaces/{space_id}/runtimes"]["post"]["summary"] == "Create and start a runtime (seed)"
    assert spec["paths"]["/v1/runtimes"]["post"]["summary"] == "Create a runtime (flat)"


def test_every_title_we_wrote_names_an_operation(spec):
    """A route renamed or removed leaves no stale title behind."""
    served = {f"{method.upper()} {path}" for path, ops in spec["paths"].items() for method in ops}
    assert sorted(set(TITLES) - served) == []


def test_groups_and_description_explain_the_generations(spec):
    tags = {tag["name"]: tag["description"] for tag in spec["tags"]}
    used = {tag for ops in spec["paths"].values() for op in ops.values() for tag in op.get("tags", [])}
    assert used <= set(tags)
    generation = re.compile(
        r"^\*\*(Current generation|Flat generation|Seed generation|Seed and flat generations|Every generation)\*\*"
    )
    assert [name for name, text in tags.items() if not generation.match(text)] == []
    assert tags["browsers (current)"].startswith("**Current generation**")
    assert tags["runtimes"].startswith("**Flat generation**")
    assert tags["runtimes (seed)"].startswith("**Seed generation**")
    # The current generation's groups come first.
    assert spec["tags"][0]["description"].startswith("**Current generation**")

    info = spec["info"]["description"]
    assert "Three generations of the API, one server" in info
    assert f"BCTRL-Version: {CURRENT}" in info
    for word in ("**current**", "**flat**", "**seed**", "bctrl.legacy", "request.version_unsupported"):
        assert word in info
    # The shared paths it lists are paths the description holds.
    listed = re.findall(r"`(/v1/[^`]+)`", info.split("gets:")[1].split("\n\n")[0])
    assert listed and all(path in spec["paths"] for path in listed)
