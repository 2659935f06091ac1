"""The API description describes every answer: a client generated from /openapi.json must know the
shape of every success response (CONVENTIONS.md: routes return models)."""

from __future__ import annotations

from app.core.config import Settings
from app.main import create_app


def test_every_json_success_response_has_a_schema(tmp_path):
    spec = create_app(Settings(data_dir=tmp_path)).openapi()
    undescribed = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                if not status.startswith("2"):
                    continue
                content = response.get("content", {})
                schema = content.get("application/json", {}).get("schema")
                if not content or schema == {}:
                    undescribed.append(f"{method.upper()} {path} {status}")
    assert undescribed == []
