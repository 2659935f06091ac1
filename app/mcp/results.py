"""A REST answer as an MCP tool result.

Success: the JSON answer as text and, when the tool declares an output schema, as structured content;
every image in it (an object with `mimeType: image/*` and base64 `data`, as a screenshot answers) also
as MCP image content, and left out of the text (a model reads the picture, not its base64). A failure is
a tool error (`isError`) whose text is the API's error envelope, so its `code` reaches the model.
"""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from app.mcp.catalog import Operation
from app.mcp.dispatch import Answer


def of(op: Operation, answer: Answer) -> types.CallToolResult:
    if answer.status >= 400:
        return types.CallToolResult(
            content=[types.TextContent(text=json.dumps(answer.body))],
            structured_content=None,
            is_error=True,
        )
    if answer.content_type.startswith("image/"):
        return types.CallToolResult(
            content=[types.ImageContent(data=answer.body, mime_type=answer.content_type.split(";")[0])]
        )
    images: list[types.ImageContent] = []
    text = json.dumps(_without_images(answer.body, images))
    structured = answer.body if op.output_schema is not None and isinstance(answer.body, dict) else None
    return types.CallToolResult(
        content=[types.TextContent(text=text), *images],
        structured_content=structured,
    )


def _without_images(node: Any, images: list[types.ImageContent]) -> Any:
    """A copy of the answer with each image's data replaced by a note; the images collected in order."""
    if isinstance(node, dict):
        mime = node.get("mimeType")
        data = node.get("data")
        if isinstance(mime, str) and mime.startswith("image/") and isinstance(data, str):
            images.append(types.ImageContent(data=data, mime_type=mime))
            return {**node, "data": f"(image {len(images)}, {len(data)} base64 characters: see the image content)"}
        return {key: _without_images(value, images) for key, value in node.items()}
    if isinstance(node, list):
        return [_without_images(value, images) for value in node]
    return node
