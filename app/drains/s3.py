"""S3-compatible PUTs signed with AWS Signature Version 4 (botocore's signer; httpx sends them).

Objects are gzipped NDJSON under `<prefix>/yyyy/mm/dd/hh/<first>-<last>.ndjson.gz`: the hour is the
first event's (UTC), `<first>`/`<last>` the outbox positions of the batch's first and last event, so
a retried batch writes the same key again (an overwrite, never a second object). Path-style URLs
(`<endpoint>/<bucket>/<key>`) work with every S3-compatible store; R2's endpoint is
`https://<accountId>.r2.cloudflarestorage.com`, region `auto`."""

from __future__ import annotations

import gzip
from datetime import datetime
from urllib.parse import quote

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials


def endpoint_of(destination: dict) -> tuple[str, str]:
    """(endpoint URL without a trailing slash, signing region) of an s3 or r2 destination."""
    if destination["type"] == "r2":
        return f"https://{destination['accountId']}.r2.cloudflarestorage.com", "auto"
    region = destination["region"]
    endpoint = destination.get("endpoint") or f"https://s3.{region}.amazonaws.com"
    return endpoint.rstrip("/"), region


def object_key(prefix: str, when: datetime, first: int, last: int) -> str:
    hour = when.strftime("%Y/%m/%d/%H")
    name = f"{hour}/{first}-{last}.ndjson.gz"
    return f"{prefix.strip('/')}/{name}" if prefix.strip("/") else name


def gzipped(ndjson: bytes) -> bytes:
    return gzip.compress(ndjson, mtime=0)  # the same batch makes the same bytes


def object_url(destination: dict, key: str) -> str:
    endpoint, _ = endpoint_of(destination)
    return f"{endpoint}/{quote(destination['bucket'], safe='')}/{quote(key, safe='/')}"


def signed_headers(url: str, region: str, access_key: str, secret_key: str, body: bytes) -> dict[str, str]:
    """The headers of a signed PUT of `body` to `url` (Host included: the signature covers it)."""
    request = AWSRequest(
        method="PUT",
        url=url,
        data=body,
        headers={"Content-Type": "application/gzip"},
    )
    S3SigV4Auth(Credentials(access_key, secret_key), "s3", region).add_auth(request)
    return {name: value for name, value in request.headers.items()}
