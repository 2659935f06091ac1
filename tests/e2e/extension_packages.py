"""Extension packages tests build: a zip of an unpacked MV3 extension whose content script marks the
pages of 127.0.0.1, and a CRX3 of it (a real key in the header; the signature is not checked)."""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

# Runs in the extension's world: says it ran, and under which extension id.
MARK = 'document.documentElement.dataset.ext = "loaded";\ndocument.documentElement.dataset.extId = chrome.runtime.id;\n'


def manifest(name: str = "Marker", version: str = "1.2.3", **extra) -> dict:
    return {
        "manifest_version": 3,
        "name": name,
        "version": version,
        "permissions": ["storage"],
        "content_scripts": [{"matches": ["http://127.0.0.1/*"], "js": ["mark.js"], "run_at": "document_start"}],
        **extra,
    }


def zip_of(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def marker_zip(name: str = "Marker", folder: str = "", attr: str = "ext") -> bytes:
    """The marker extension; `attr` names the data attributes its script writes (`ext`, `extId`)."""
    script = MARK.replace("dataset.ext ", f"dataset.{attr} ").replace("dataset.extId", f"dataset.{attr}Id")
    return zip_of({f"{folder}manifest.json": json.dumps(manifest(name)), f"{folder}mark.js": script})


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def crx_of(zipped: bytes) -> tuple[bytes, str]:
    """A CRX3 around `zipped` and the extension id Chromium derives from its key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    public = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    crx_id = hashlib.sha256(public).digest()[:16]
    proof = _field(1, public) + _field(2, b"\x00" * 256)
    header = _field(2, proof) + _field(10000, _field(1, crx_id))
    expected = "".join(chr(ord("a") + int(c, 16)) for c in crx_id.hex())
    return b"Cr24" + struct.pack("<II", 3, len(header)) + header + zipped, expected
