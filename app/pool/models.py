"""Tables of pool (filled by its migration)."""

from __future__ import annotations
