"""The S3-compatible object store (`BCTRL_STORAGE_URL=s3://<bucket>/<prefix>`).

Requests are signed with AWS Signature Version 4 by botocore's signer and sent by httpx, as the
drains do: async, nothing blocking the event loop. URLs are path-style (`<endpoint>/<bucket>/<key>`),
which every S3-compatible store (AWS, MinIO, R2, Ceph, Garage, ...) understands.

- Every object lives at `<prefix>/<key>`; keys are the server's own (`check_key`), so nothing is
  ever read or written outside the prefix.
- A body up to one part (`storage_part_bytes`) goes up as one PUT; a larger one as a multipart
  upload, one part in memory at a time. A failed, refused (too large) or cancelled upload aborts
  its multipart upload, so nothing half-written becomes visible (S3 shows an object only once its
  upload completes).
- Downloads stream, with a `Range` header for byte ranges.
- The store unreachable, timing out, refusing the credentials or answering 5xx is `storage.unavailable`
  (503): the client may retry; the log says why, never with a credential.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import weakref
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from urllib.parse import quote
from xml.etree import ElementTree

import httpx
import structlog
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from app.core.errors import Unavailable
from app.storage.base import CHUNK_SIZE, StoredObject, TooLarge, check_key, check_list_prefix, object_missing

log = structlog.get_logger(__name__)

# httpx clients (connection pools) per configuration and event loop: make_store builds a store per call.
_CLIENTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[tuple, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary()
)


def parse_url(url: str) -> tuple[str, str]:
    """(bucket, prefix without slashes at either end) of `s3://bucket/prefix`."""
    if not url.startswith("s3://"):
        raise ValueError("not an s3:// URL")
    bucket, _, prefix = url[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError("no bucket in the s3:// URL")
    return bucket, prefix.strip("/")


def unavailable(reason: str) -> Unavailable:
    # `reason` is for the reader of the code; the client learns only that the store is unavailable.
    return Unavailable("The object store is unavailable", code="storage.unavailable", details={})


def _s3_error_code(body: bytes) -> str | None:
    try:
        return ElementTree.fromstring(body).findtext("Code")
    except ElementTree.ParseError:
        return None


class S3Store:
    name = "s3"

    def __init__(
        self,
        url: str,
        *,
        endpoint: str | None,
        region: str,
        access_key_id: str | None,
        secret_access_key: str | None,
        part_bytes: int = 8 * 1024 * 1024,
        timeout_seconds: float = 10.0,
    ) -> None:
        self.bucket, self.prefix = parse_url(url)
        self.region = region
        self.endpoint = (endpoint or f"https://s3.{region}.amazonaws.com").rstrip("/")
        if not access_key_id or not secret_access_key:
            raise ValueError(
                "BCTRL_STORAGE_ACCESS_KEY_ID and BCTRL_STORAGE_SECRET_ACCESS_KEY must be set with an s3 store"
            )
        self._credentials = Credentials(access_key_id, secret_access_key)
        self.part_bytes = max(part_bytes, 5 * 1024 * 1024)
        self.timeout = timeout_seconds
        self._pool_key = (self.endpoint, self.timeout)

    def __repr__(self) -> str:  # never the credentials
        return f"S3Store(endpoint={self.endpoint!r}, bucket={self.bucket!r}, prefix={self.prefix!r})"

    # --- requests ------------------------------------------------------------------------------

    @property
    def _client(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        pools = _CLIENTS.setdefault(loop, {})
        client = pools.get(self._pool_key)
        if client is None or client.is_closed:
            timeout = httpx.Timeout(self.timeout)
            client = pools[self._pool_key] = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        return client

    def object_name(self, key: str) -> str:
        check_key(key)  # server keys only: no `..`, no slash games, never outside the prefix
        return f"{self.prefix}/{key}" if self.prefix else key

    def url_of(self, key: str, query: str = "") -> str:
        path = f"/{quote(self.bucket, safe='')}/{quote(self.object_name(key), safe='/')}"
        return f"{self.endpoint}{path}{'?' + query if query else ''}"

    def _signed(self, method: str, url: str, body: bytes | _Part, headers: dict[str, str] | None) -> httpx.Request:
        headers = dict(headers or {})
        if isinstance(body, _Part):
            # A part streams from its chunks with its length and hash known: no joined copy of it.
            request = AWSRequest(method=method, url=url, headers=headers)
            request.context["payload_sha256"] = body.sha256.hexdigest()
            _Signer(self._credentials, "s3", self.region).add_auth(request)
            signed = dict(request.headers.items())
            signed["Content-Length"] = str(body.size)
            return self._client.build_request(method, url, content=body.stream(), headers=signed)
        request = AWSRequest(method=method, url=url, data=body, headers=headers)
        _Signer(self._credentials, "s3", self.region).add_auth(request)
        return self._client.build_request(method, url, content=body or None, headers=dict(request.headers.items()))

    async def _send(
        self,
        method: str,
        url: str,
        body: bytes | _Part = b"",
        headers: dict[str, str] | None = None,
        *,
        stream: bool = False,
    ) -> httpx.Response:
        """One signed request; a transport failure, a 5xx, or refused credentials raise storage.unavailable."""
        try:
            response = await self._client.send(self._signed(method, url, body, headers), stream=stream)
        except httpx.HTTPError as e:
            log.warning("object_store_unreachable", method=method, error=type(e).__name__, endpoint=self.endpoint)
            raise unavailable(type(e).__name__) from e
        # 404 (no such object) and 416 (a range past the end) are answers; anything else not 2xx (refused
        # credentials, a wrong region's redirect, no such bucket, a 5xx) means the store cannot serve us.
        if response.status_code >= 300 and response.status_code not in (404, 416):
            body_bytes = b"" if stream else response.content
            if stream:
                with contextlib.suppress(httpx.HTTPError):
                    body_bytes = await response.aread()
                await response.aclose()
            code = _s3_error_code(body_bytes)
            log.warning(
                "object_store_refused", method=method, status=response.status_code, code=code, endpoint=self.endpoint
            )
            raise unavailable(code or str(response.status_code))
        return response

    # --- writing -------------------------------------------------------------------------------

    async def put_stream(self, key: str, chunks: AsyncIterable[bytes], *, max_bytes: int | None = None) -> StoredObject:
        url = self.url_of(key)
        digest = hashlib.sha256()
        size = 0
        part = _Part()  # at most one part's worth of chunks in memory
        upload: _Multipart | None = None
        try:
            async for chunk in chunks:
                if not chunk:
                    continue
                size += len(chunk)
                if max_bytes is not None and size > max_bytes:
                    raise TooLarge(max_bytes)
                digest.update(chunk)
                part.add(bytes(chunk))
                if part.size >= self.part_bytes:
                    if upload is None:
                        upload = await self._start_multipart(url)
                    await upload.send_part(part)
                    part = _Part()
            if upload is None:
                await self._put_whole(url, part)
            else:
                if part.size:
                    await upload.send_part(part)
                await upload.complete()
        except BaseException:
            if upload is not None:
                # Shielded: a cancelled request must still abort, or the parts linger (and cost) in the bucket.
                await asyncio.shield(upload.abort())
            raise
        return StoredObject(key=key, size=size, sha256=digest.hexdigest())

    async def put_file(self, key: str, source: Path, *, max_bytes: int | None = None) -> StoredObject:
        check_key(key)
        return await self.put_stream(key, _read_file(Path(source)), max_bytes=max_bytes)

    async def _put_whole(self, url: str, body: _Part) -> None:
        response = await self._send("PUT", url, body, {"Content-Type": "application/octet-stream"})
        if response.status_code != 200:  # a 404: the bucket is gone
            log.warning("object_store_refused", method="PUT", status=response.status_code, endpoint=self.endpoint)
            raise unavailable(f"PUT {response.status_code}")

    async def _start_multipart(self, url: str) -> _Multipart:
        response = await self._send("POST", f"{url}?uploads", headers={"Content-Type": "application/octet-stream"})
        upload_id = _findtext(response.content, "UploadId") if response.status_code == 200 else None
        if not upload_id:
            log.warning(
                "object_store_refused", method="POST", status=response.status_code, code="CreateMultipartUpload"
            )
            raise unavailable("CreateMultipartUpload")
        return _Multipart(self, url, upload_id)

    # --- reading -------------------------------------------------------------------------------

    async def open(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        url = self.url_of(key)
        headers = {}
        if start or end is not None:
            headers["Range"] = f"bytes={start}-{'' if end is None else end}"
        response = await self._send("GET", url, headers=headers, stream=True)
        try:
            if response.status_code == 404:
                raise object_missing(key)
            if response.status_code == 416:
                return  # a range starting at the end: nothing to send
            if response.status_code not in (200, 206):
                raise unavailable(f"GET {response.status_code}")
            try:
                async for data in response.aiter_bytes(CHUNK_SIZE):
                    yield data
            except httpx.HTTPError as e:
                log.warning("object_store_unreachable", method="GET", error=type(e).__name__, endpoint=self.endpoint)
                raise unavailable(type(e).__name__) from e
        finally:
            await response.aclose()

    async def _head(self, key: str) -> httpx.Response:
        return await self._send("HEAD", self.url_of(key))

    async def size(self, key: str) -> int:
        response = await self._head(key)
        if response.status_code == 404:
            raise object_missing(key)
        if response.status_code != 200:
            raise unavailable(f"HEAD {response.status_code}")
        return int(response.headers["content-length"])

    async def exists(self, key: str) -> bool:
        response = await self._head(key)
        if response.status_code in (200, 404):
            return response.status_code == 200
        raise unavailable(f"HEAD {response.status_code}")

    async def delete(self, key: str) -> None:
        response = await self._send("DELETE", self.url_of(key))
        if response.status_code not in (200, 204, 404):
            raise unavailable(f"DELETE {response.status_code}")

    async def list(self, prefix: str) -> list[str]:
        # ListObjectsV2 a page (up to 1000 keys) at a time; an upload in progress is never listed.
        check_list_prefix(prefix)
        full = f"{self.prefix}/{prefix}" if self.prefix else prefix
        keys: list[str] = []
        token: str | None = None
        while True:
            query = f"list-type=2&prefix={quote(full, safe='')}"
            if token:
                query += f"&continuation-token={quote(token, safe='')}"
            response = await self._send("GET", f"{self.endpoint}/{quote(self.bucket, safe='')}?{query}")
            if response.status_code != 200:
                raise unavailable(f"ListObjectsV2 {response.status_code}")
            root = ElementTree.fromstring(response.content)
            for element in root.iter():
                if element.tag == "Key" or element.tag.endswith("}Key"):
                    name = element.text or ""
                    keys.append(name[len(self.prefix) + 1 :] if self.prefix else name)
            token = _findtext(response.content, "NextContinuationToken")
            if not token:
                return sorted(keys)

    async def ready(self) -> None:
        """Raise storage.unavailable unless the bucket answers to these credentials."""
        url = f"{self.endpoint}/{quote(self.bucket, safe='')}?list-type=2&max-keys=1&prefix={quote(self.prefix + '/', safe='')}"
        response = await self._send("GET", url)
        if response.status_code != 200:
            raise unavailable(f"ListObjectsV2 {response.status_code}")


class _Signer(S3SigV4Auth):
    """SigV4 for S3 taking the payload's hash from the request's context when the caller computed it."""

    def payload(self, request):
        return request.context.get("payload_sha256") or super().payload(request)


class _Part:
    """A body gathered chunk by chunk: its size and SHA-256 kept as it grows, sent as a stream."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.sha256 = hashlib.sha256()

    def add(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)
        self.sha256.update(chunk)

    async def stream(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk


class _Multipart:
    """One multipart upload in progress: parts numbered from 1, completed or aborted once."""

    def __init__(self, store: S3Store, url: str, upload_id: str) -> None:
        self.store = store
        self.url = url
        self.upload_id = upload_id
        self.etags: list[str] = []

    def _query(self, **extra: str) -> str:
        pairs = [*extra.items(), ("uploadId", self.upload_id)]
        return "&".join(f"{name}={quote(value, safe='')}" for name, value in pairs)

    async def send_part(self, body: _Part) -> None:
        number = len(self.etags) + 1
        response = await self.store._send("PUT", f"{self.url}?{self._query(partNumber=str(number))}", body)
        etag = response.headers.get("etag")
        if response.status_code != 200 or not etag:
            raise unavailable(f"UploadPart {response.status_code}")
        self.etags.append(etag)

    async def complete(self) -> None:
        parts = "".join(
            f"<Part><PartNumber>{n}</PartNumber><ETag>{etag}</ETag></Part>" for n, etag in enumerate(self.etags, 1)
        )
        body = f'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{parts}</CompleteMultipartUpload>'
        response = await self.store._send(
            "POST", f"{self.url}?{self._query()}", body.encode(), {"Content-Type": "application/xml"}
        )
        # S3 may answer 200 and still report an error in the body (the upload then did not complete).
        if response.status_code != 200 or b"<Error>" in response.content:
            raise unavailable(f"CompleteMultipartUpload {_s3_error_code(response.content)}")

    async def abort(self) -> None:
        try:
            await self.store._send("DELETE", f"{self.url}?{self._query()}")
        except Exception:
            # The store is gone: the parts stay invisible (never an object) until a lifecycle rule
            # (AbortIncompleteMultipartUpload) or the next abort clears them.
            log.warning("object_store_abort_failed", endpoint=self.store.endpoint)


def _findtext(xml: bytes, tag: str) -> str | None:
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError:
        return None
    for element in root.iter():
        if element.tag == tag or element.tag.endswith("}" + tag):
            return element.text
    return None


async def _read_file(source: Path) -> AsyncIterator[bytes]:
    f = await asyncio.to_thread(open, source, "rb")
    try:
        while data := await asyncio.to_thread(f.read, CHUNK_SIZE):
            yield data
    finally:
        f.close()
