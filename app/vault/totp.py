"""TOTP seeds of `login` secrets: the code of now, computed on the server (the seed never leaves it but
through `reveal`). A seed is base32 (spaces, dashes, padding and case ignored), of at least 80 bits;
codes are RFC 6238's defaults (6 digits, 30 seconds, SHA-1), what sites that show a seed use."""

from __future__ import annotations

import base64
import binascii

import pyotp

# Sites choose their seeds' length; 80 bits (16 base32 characters) is common (pyotp's default floor,
# 112 bits, would refuse them).
MIN_BITS = 80


class _Totp(pyotp.TOTP):
    min_secret_length_bits = MIN_BITS


def parse(raw: str) -> str:
    """The seed's base32 characters; ValueError (with a reason a person can act on) when it is not one."""
    secret = "".join(raw.split()).replace("-", "").upper().rstrip("=")
    if not secret:
        raise ValueError("the seed is empty")
    try:
        decoded = base64.b32decode(secret + "=" * (-len(secret) % 8))
    except (binascii.Error, ValueError):
        raise ValueError("a TOTP seed is base32 (letters A-Z and digits 2-7)") from None
    if len(decoded) * 8 < MIN_BITS:
        raise ValueError(f"a TOTP seed has at least {MIN_BITS} bits ({MIN_BITS // 5} base32 characters)")
    return secret


def code_now(raw: str) -> str:
    return _Totp(parse(raw)).now()
