"""What an uploaded extension package is, checked before anything of it is kept.

A package is a zip of an unpacked extension (`manifest.json` at its root, or in the one folder the
zip holds) or a packed `.crx` (CRX3: the magic `Cr24`, version 3 as a little-endian uint32, the
header's length as another, a protobuf `CrxFileHeader`, then the zip). The archive is hostile input:
- at most MAX_ENTRIES entries and MAX_UNPACKED_BYTES once unpacked, counted while inflating (the
  sizes a zip declares are not trusted), at most MAX_ENTRY_BYTES an entry;
- no absolute path, no `..`, no backslash, no empty or NUL component, no link or device, no
  encrypted entry, no name twice;
- `manifest.json` a JSON object with `manifest_version` 3 (Chromium 156 loads no Manifest V2
  extension any more), a `name` and a Chrome `version`,
  and every file its content scripts, background and action name present;
- no permission that takes the browser past its egress policy (REFUSED_PERMISSIONS: `proxy`, with which
  chrome.proxy.settings turns the egress proxy off where no managed policy pins it, as in the runtime
  image, and the browser reaches the control plane on loopback), asked or optional.

The kept form (`normalize`) is a new zip of the checked files with the folder prefix removed and a
`key` in the manifest: the CRX's own public key, the manifest's, or one made for the upload, so that
Chromium gives the extension the same id in every browser and run (its id is derived from the key).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import stat
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from app.core.errors import DomainError

MAX_PACKAGE_BYTES = 64 * 1024 * 1024
MAX_ENTRIES = 5000
MAX_UNPACKED_BYTES = 256 * 1024 * 1024
MAX_ENTRY_BYTES = 128 * 1024 * 1024
MAX_MANIFEST_BYTES = 1024 * 1024
MAX_NAME_BYTES = 1024
MAX_CRX_HEADER_BYTES = 1024 * 1024
CRX_MAGIC = b"Cr24"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
MANIFEST = "manifest.json"
_VERSION = re.compile(r"^(0|[1-9][0-9]{0,4})(\.(0|[1-9][0-9]{0,4})){0,3}$")
_MSG = re.compile(r"^__MSG_([A-Za-z0-9_@]+)__$")
LIMITS = {
    "maxPackageBytes": MAX_PACKAGE_BYTES,
    "maxEntries": MAX_ENTRIES,
    "maxUnpackedBytes": MAX_UNPACKED_BYTES,
    "maxEntryBytes": MAX_ENTRY_BYTES,
}


# Permissions no uploaded extension may hold (see above).
REFUSED_PERMISSIONS = frozenset({"proxy"})


def refused_permissions(manifest: dict[str, Any]) -> list[str]:
    """The permissions of REFUSED_PERMISSIONS the manifest asks for (`permissions` or `optional_permissions`)."""
    found: list[str] = []
    for key in ("permissions", "optional_permissions"):
        values = manifest.get(key)
        for value in values if isinstance(values, list) else []:
            if isinstance(value, str) and value.strip().lower() in REFUSED_PERMISSIONS and value not in found:
                found.append(value)
    return found


class PackageError(DomainError):
    status = 400
    code = "browser_extension.invalid_package"


def invalid(message: str, **details: Any) -> PackageError:
    return PackageError(f"Not a browser extension: {message}", details=details)


def unsupported(message: str) -> PackageError:
    return PackageError(message, code="browser_extension.unsupported_format", details={"formats": ["crx", "zip"]})


def over_limit(message: str, limit: str) -> PackageError:
    return PackageError(
        message, code="browser_extension.archive_limit_exceeded", details={"limit": limit, "limits": LIMITS}
    )


@dataclass
class Package:
    format: str  # crx | zip
    manifest: dict[str, Any]
    name: str
    version: str
    manifest_version: int
    # Public key (DER SubjectPublicKeyInfo) the extension's id is derived from, when the package names one.
    public_key: bytes | None
    # Entries kept: archive name -> path inside the extension.
    entries: dict[str, str] = field(default_factory=dict)
    zip_offset: int = 0
    unpacked_bytes: int = 0

    @property
    def permissions(self) -> list[str]:
        return [p for p in self.manifest.get("permissions") or [] if isinstance(p, str)]

    @property
    def host_permissions(self) -> list[str]:
        """What it may reach: its host permissions and the pages its content scripts match."""
        found = [p for p in self.manifest.get("host_permissions") or [] if isinstance(p, str)]
        for script in self.manifest.get("content_scripts") or []:
            if isinstance(script, dict):
                found += [m for m in script.get("matches") or [] if isinstance(m, str) and m not in found]
        return found


def extension_id(public_key: bytes) -> str:
    """Chromium's id of an extension: the first 16 bytes of the key's SHA-256, each nibble as a..p."""
    return "".join(chr(ord("a") + int(c, 16)) for c in hashlib.sha256(public_key).hexdigest()[:32])


# --- CRX3 ---------------------------------------------------------------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if pos >= len(data) or shift > 63:
            raise invalid("the CRX header is not a valid protobuf")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> list[tuple[int, bytes | int]]:
    """The top-level fields of a protobuf message (length-delimited ones as bytes)."""
    out, pos = [], 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise invalid("the CRX header is not a valid protobuf")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise invalid("the CRX header is not a valid protobuf")
        out.append((number, value))
    return out


def crx_header(f: BinaryIO) -> tuple[int, bytes | None]:
    """(offset of the zip, the public key the CRX's id names) of a CRX3 file."""
    head = f.read(12)
    if len(head) < 12 or head[:4] != CRX_MAGIC:
        raise invalid("a CRX file starts with Cr24, its version and its header's length")
    version, length = struct.unpack("<II", head[4:12])
    if version != 3:
        raise unsupported(f"CRX version {version} is not supported; Chromium loads CRX3 packages only")
    if length > MAX_CRX_HEADER_BYTES:
        raise invalid(f"the CRX header is larger than {MAX_CRX_HEADER_BYTES} bytes")
    header = f.read(length)
    if len(header) != length:
        raise invalid("the CRX file ends inside its header")
    keys: list[bytes] = []
    crx_id: bytes | None = None
    for number, value in _fields(header):
        if number in (2, 3) and isinstance(value, bytes):  # sha256_with_rsa, sha256_with_ecdsa proofs
            for inner, key in _fields(value):
                if inner == 1 and isinstance(key, bytes) and key:
                    keys.append(key)
        elif number == 10000 and isinstance(value, bytes):  # signed_header_data: SignedData {crx_id}
            for inner, found in _fields(value):
                if inner == 1 and isinstance(found, bytes):
                    crx_id = found
    if crx_id is not None:
        named = [k for k in keys if hashlib.sha256(k).digest()[:16] == crx_id]
        if not named:
            raise invalid("the CRX header's id matches none of its public keys")
        return 12 + length, named[0]
    return 12 + length, keys[0] if keys else None


# --- the archive ----------------------------------------------------------------------------------------


def _check_name(name: str) -> None:
    bad = (
        not name
        or len(name.encode()) > MAX_NAME_BYTES
        or "\\" in name
        or "\x00" in name
        or name.startswith("/")
        or re.match(r"^[A-Za-z]:", name) is not None
    )
    parts = name.rstrip("/").split("/")
    if bad or any(p in ("", ".", "..") for p in parts):
        raise invalid(f"the archive entry {name[:200]!r} is not a plain relative path", entry=name[:200])


def _mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0xFFFF if info.create_system == 3 else 0


def _resolve_message(manifest: dict, value: Any, read) -> Any:
    """A `__MSG_name__` string from the default locale's messages, when the package has them."""
    match = _MSG.match(value) if isinstance(value, str) else None
    locale = manifest.get("default_locale")
    if not match or not isinstance(locale, str) or "/" in locale or ".." in locale:
        return value
    raw = read(f"_locales/{locale}/messages.json")
    try:
        messages = json.loads(raw.decode("utf-8-sig")) if raw is not None else {}
    except (UnicodeDecodeError, ValueError):
        return value
    entry = messages.get(match.group(1)) or next(
        (v for k, v in messages.items() if k.lower() == match.group(1).lower()), None
    )
    message = entry.get("message") if isinstance(entry, dict) else None
    return message if isinstance(message, str) and message.strip() else value


def _referenced(manifest: dict) -> list[str]:
    """Files the manifest names that Chromium refuses to load the extension without."""
    names: list[Any] = []
    for script in manifest.get("content_scripts") or []:
        if isinstance(script, dict):
            names += list(script.get("js") or []) + list(script.get("css") or [])
    background = manifest.get("background")
    if isinstance(background, dict):
        names += [background.get("service_worker"), background.get("page"), *(background.get("scripts") or [])]
    return [n.lstrip("/") for n in names if isinstance(n, str) and n]


def inspect(path: Path) -> Package:
    """Check the package at `path` (whole bytes as uploaded); raises PackageError saying what is wrong."""
    size = path.stat().st_size
    if size == 0:
        raise PackageError("The extension file is empty", code="browser_extension.file_empty")
    if size > MAX_PACKAGE_BYTES:
        raise over_limit(f"The package is larger than {MAX_PACKAGE_BYTES} bytes", "maxPackageBytes")
    with open(path, "rb") as f:
        magic = f.read(4)
        f.seek(0)
        if magic == CRX_MAGIC:
            fmt = "crx"
            offset, public_key = crx_header(f)
        elif magic in ZIP_MAGICS:
            fmt, offset, public_key = "zip", 0, None
        else:
            raise unsupported("Upload a packed extension (.crx, CRX3) or a zip of an unpacked one")
    with open(path, "rb") as raw:
        raw.seek(offset)
        body = _Slice(raw, offset, size)
        try:
            with zipfile.ZipFile(body) as archive:
                return _inspect_zip(archive, fmt, offset, public_key)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as exc:
            raise invalid(f"the archive cannot be read ({exc})") from None


class _Slice:
    """A read-only file from `offset` on: the zip inside a CRX (its offsets count from there)."""

    def __init__(self, f: BinaryIO, offset: int, size: int) -> None:
        self.f, self.offset, self.size = f, offset, size

    def seek(self, pos: int, whence: int = 0) -> int:
        base = {0: self.offset, 1: self.f.tell(), 2: self.size}[whence]
        target = max(self.offset, base + pos)
        return self.f.seek(target) - self.offset

    def tell(self) -> int:
        return self.f.tell() - self.offset

    def read(self, n: int = -1) -> bytes:
        return self.f.read(n)

    def seekable(self) -> bool:
        return True


def _inspect_zip(archive: zipfile.ZipFile, fmt: str, offset: int, public_key: bytes | None) -> Package:
    infos = archive.infolist()
    if len(infos) > MAX_ENTRIES:
        raise over_limit(f"The archive has more than {MAX_ENTRIES} entries", "maxEntries")
    seen: set[str] = set()
    files: list[zipfile.ZipInfo] = []
    for info in infos:
        _check_name(info.filename)
        mode = _mode(info)
        kind = stat.S_IFMT(mode)
        if kind == stat.S_IFLNK:
            raise invalid(f"the archive entry {info.filename[:200]!r} is a symbolic link", entry=info.filename[:200])
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            raise invalid(f"the archive entry {info.filename[:200]!r} is not a file", entry=info.filename[:200])
        if info.flag_bits & 0x1:
            raise invalid(f"the archive entry {info.filename[:200]!r} is encrypted", entry=info.filename[:200])
        key = info.filename.rstrip("/")
        if key in seen:
            raise invalid(f"the archive names {key[:200]!r} twice", entry=key[:200])
        seen.add(key)
        if not info.is_dir():
            files.append(info)
    names = {i.filename for i in files}
    # A name that is a file and also the folder of another entry cannot be unpacked (it would fail at launch).
    for name in names:
        parts = name.split("/")
        for depth in range(1, len(parts)):
            if "/".join(parts[:depth]) in names:
                folder = "/".join(parts[:depth])[:200]
                raise invalid(
                    f"the archive entry {folder!r} is a file and also a folder of {name[:200]!r}", entry=folder
                )
    prefix = ""
    if MANIFEST not in names:
        tops = {n.split("/", 1)[0] for n in seen}
        if len(tops) == 1 and f"{next(iter(tops))}/{MANIFEST}" in names:
            prefix = next(iter(tops)) + "/"
        else:
            raise invalid("manifest.json is missing (it must be at the archive's root or in its one folder)")
    entries = {i.filename: i.filename[len(prefix) :] for i in files if i.filename.startswith(prefix)}
    # Inflate every entry once, counting real bytes: declared sizes are not trusted.
    total = 0
    contents: dict[str, bytes] = {}
    for info in files:
        if info.filename not in entries:
            continue
        read = 0
        with archive.open(info) as stream:
            while chunk := stream.read(1024 * 1024):
                read += len(chunk)
                total += len(chunk)
                if read > MAX_ENTRY_BYTES:
                    raise over_limit(f"An entry is larger than {MAX_ENTRY_BYTES} bytes unpacked", "maxEntryBytes")
                if total > MAX_UNPACKED_BYTES:
                    raise over_limit(
                        f"The archive is larger than {MAX_UNPACKED_BYTES} bytes unpacked", "maxUnpackedBytes"
                    )
                if entries[info.filename] == MANIFEST:
                    if read > MAX_MANIFEST_BYTES:
                        raise invalid(f"manifest.json is larger than {MAX_MANIFEST_BYTES} bytes")
                    contents[MANIFEST] = contents.get(MANIFEST, b"") + chunk
    try:
        manifest = json.loads(contents.get(MANIFEST, b"").decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise invalid(f"manifest.json is not valid JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise invalid("manifest.json is not a JSON object")
    mv = manifest.get("manifest_version")
    if mv == 2:
        # Chromium 156 no longer loads Manifest V2 extensions, with or without flags (tried).
        raise invalid(
            "manifest_version 2 is no longer loaded by Chromium; port the extension to Manifest V3",
            field="manifest_version",
            supported=[3],
        )
    if type(mv) is not int or mv != 3:
        raise invalid("manifest.json needs manifest_version 3", field="manifest_version", supported=[3])
    refused = refused_permissions(manifest)
    if refused:
        raise invalid(
            f"the permission {refused[0]!r} is not allowed here: it would take the browser past its network policy",
            field="permissions",
            refused=refused,
        )
    version = manifest.get("version")
    if not isinstance(version, str) or not _VERSION.match(version) or max(map(int, version.split("."))) > 65535:
        raise invalid("manifest.json needs a version of one to four numbers 0..65535 joined by dots", field="version")
    by_inner = {inner: name for name, inner in entries.items()}

    def read_small(inner: str) -> bytes | None:
        if inner not in by_inner:
            return None
        with archive.open(by_inner[inner]) as stream:
            return stream.read(MAX_MANIFEST_BYTES)

    name = _resolve_message(manifest, manifest.get("name"), read_small)
    if not isinstance(name, str) or not name.strip():
        raise invalid("manifest.json needs a name", field="name")
    inner_names = set(entries.values())
    for ref in _referenced(manifest):
        if ref not in inner_names:
            raise invalid(f"manifest.json names {ref[:200]!r}, which the archive does not hold", entry=ref[:200])
    key = manifest.get("key")
    if isinstance(key, str):
        try:
            from_manifest = base64.b64decode(key, validate=True)
        except ValueError:
            raise invalid("manifest.json's key is not base64", field="key") from None
        if public_key is None:
            public_key = from_manifest
    elif key is not None:
        raise invalid("manifest.json's key is not a string", field="key")
    return Package(
        format=fmt,
        manifest=manifest,
        name=name.strip()[:200],
        version=version,
        manifest_version=mv,
        public_key=public_key,
        entries=entries,
        zip_offset=offset,
        unpacked_bytes=total,
    )


def new_public_key() -> bytes:
    """A key of the extension's own, for a package that names none: its id stays the same everywhere."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def normalize(package: Package, source: Path, target: Path) -> None:
    """Write the kept form of the checked package at `source` to `target` (a zip of the extension's
    files at its root, the manifest carrying the package's key)."""
    manifest = dict(package.manifest)
    if package.public_key is not None:
        manifest["key"] = base64.b64encode(package.public_key).decode()
    size = source.stat().st_size
    with open(source, "rb") as raw, open(target, "wb") as out:
        with zipfile.ZipFile(_Slice(raw, package.zip_offset, size)) as archive:
            with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as kept:
                kept.writestr(MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
                for name, inner in package.entries.items():
                    if inner == MANIFEST:
                        continue
                    info = zipfile.ZipInfo(inner, date_time=(1980, 1, 1, 0, 0, 0))
                    info.compress_type = zipfile.ZIP_DEFLATED
                    info.external_attr = (stat.S_IFREG | 0o644) << 16
                    with archive.open(name) as src, kept.open(info, "w") as dst:
                        while chunk := src.read(1024 * 1024):
                            dst.write(chunk)


def unpack(kept: Path, target: Path) -> None:
    """Unpack a kept (normalized) package into the empty directory `target`: files 0644, dirs 0755."""
    with zipfile.ZipFile(kept) as archive:
        for info in archive.infolist():
            _check_name(info.filename)
            dest = target.joinpath(*info.filename.rstrip("/").split("/"))
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True, mode=0o755)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            with archive.open(info) as src, open(dest, "xb") as dst:
                while chunk := src.read(1024 * 1024):
                    dst.write(chunk)
            dest.chmod(0o644)
