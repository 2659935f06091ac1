"""Fetch stores an answer's cookies only for the answer's own site (CDP checks no Domain against the URL)."""

from __future__ import annotations

import pytest

from app.browsing.fetch import parse_set_cookie


@pytest.mark.parametrize(
    ("line", "url", "domain"),
    [
        ("a=1; Domain=example.com", "https://www.example.com/", ".example.com"),
        ("a=1; Domain=.Example.com", "https://example.com/", ".example.com"),
        ("a=1", "https://example.com/", None),
        ("a=1; Domain=127.0.0.1", "http://127.0.0.1:8080/", None),
    ],
)
def test_own_site_cookies_are_kept(line, url, domain):
    cookie = parse_set_cookie(line, url)
    assert cookie is not None and cookie.get("domain") == domain and cookie["url"] == url


@pytest.mark.parametrize(
    ("line", "url"),
    [
        ("a=1; Domain=victim.test", "http://127.0.0.1:8080/"),
        ("a=1; Domain=bank.com", "https://evil.com/"),
        ("a=1; Domain=com", "https://evil.com/"),
        ("a=1; Domain=ample.com", "https://example.com/"),
        ("a=1; Domain=www.example.com", "https://example.com/"),
        ("a=1; Domain=0.0.1", "http://127.0.0.1/"),
    ],
)
def test_other_sites_cookies_are_refused(line, url):
    assert parse_set_cookie(line, url) is None


@pytest.mark.parametrize(
    ("line", "url", "kept"),
    [
        ("s=1; Secure", "http://example.com/", False),
        ("s=1; Secure", "https://example.com/", True),
        ("s=1; Secure", "http://127.0.0.1:8080/", True),
        ("__Secure-s=1", "https://example.com/", False),
        ("__Secure-s=1; Secure", "https://example.com/", True),
        ("__Host-s=1; Secure; Path=/", "https://example.com/", True),
        ("__Host-s=1; Secure; Path=/; Domain=example.com", "https://example.com/", False),
        ("__Host-s=1; Secure", "https://example.com/", False),
    ],
)
def test_secure_cookies_and_prefixes(line, url, kept):
    assert (parse_set_cookie(line, url) is not None) is kept
