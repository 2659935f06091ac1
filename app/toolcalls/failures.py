"""How an executor says a tool call failed (the code and message the model and the record get)."""

from __future__ import annotations


class ToolFailed(Exception):
    """An executor's refusal or failure: becomes the call's `error` (status failed)."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code, self.message, self.retryable = code, message, retryable
