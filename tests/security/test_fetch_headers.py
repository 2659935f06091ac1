"""Fetch's request headers: a header that is not valid HTTP is 400 naming it (non-ASCII was a 500, an
illegal name a 502 after the browser was held, a control character was sent on)."""

from __future__ import annotations

import pytest

from app.browsing.fetch import check_headers
from app.core.errors import InvalidRequest


@pytest.mark.parametrize(
    "headers",
    [
        {"X-T": "é"},
        {"X-T": "😀"},
        {"é": "1"},
        {"X(T": "1"},
        {"X-T\x7f": "1"},
        {"X-T": "a\x01b"},
        {"": "1"},
        {"X-T": "a\r\nHost: evil"},
        {"Host": "evil"},
        {"proxy-authorization": "Basic x"},
        {"Transfer-Encoding": "chunked"},
    ],
)
def test_bad_headers_are_refused(headers):
    with pytest.raises(InvalidRequest):
        check_headers(headers)


def test_good_headers_pass():
    given = {"Authorization": "Bearer a.b-c_d~", "X-Thing": "tab\there", "Accept": "*/*"}
    assert check_headers(given) == given
