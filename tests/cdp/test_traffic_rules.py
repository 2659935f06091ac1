"""The networkTraffic rules as the run observer applies them (app/cdp/traffic.py): which rule refuses
which request, and that the Fetch patterns the browser pauses for cover every request a rule refuses."""

from __future__ import annotations

import fnmatch

import pytest

from app.cdp.traffic import TrafficRules, url_without_query
from app.current.traffic_schemas import NetworkTraffic


def rules(**config) -> TrafficRules:
    # Through the request model, as a stored browser's rules are.
    stored = NetworkTraffic.model_validate(config).model_dump(mode="json", by_alias=True, exclude_none=True)
    found = TrafficRules.of(stored)
    assert found is not None
    return found


def paused_for(r: TrafficRules, url: str, cdp_type: str) -> bool:
    """Whether the browser would pause the request for us (Fetch's `*`/`?` wildcards, whole URL)."""
    for p in r.fetch_patterns():
        if "resourceType" in p and p["resourceType"] != cdp_type:
            continue
        if fnmatch.fnmatchcase(url, p["urlPattern"].replace("[", "[[]")):
            return True
    return False


CASES = [
    # (config, url, CDP type, headers, expected (rule, match) or None)
    ({"urlBlocklist": ["https://*.example.com/*.js"]}, "https://cdn.example.com/a/b.js", "Script", {}, "urlBlocklist"),
    ({"urlBlocklist": ["https://*.example.com/*.js"]}, "https://cdn.example.com/a/b.css", "Stylesheet", {}, None),
    ({"urlBlocklist": ["example.com"]}, "http://example.com:8080/x?y", "XHR", {}, "urlBlocklist"),
    ({"urlBlocklist": ["example.com"]}, "https://deep.sub.example.com/", "Document", {}, "urlBlocklist"),
    ({"urlBlocklist": ["example.com"]}, "https://badexample.com/", "Document", {}, None),
    ({"urlBlocklist": ["example.com"]}, "https://other.test/?u=example.com/", "Document", {}, None),
    ({"urlBlocklist": ["*.example.com"]}, "https://example.com/", "Document", {}, None),
    ({"urlBlocklist": ["*.example.com"]}, "https://a.example.com/", "Document", {}, "urlBlocklist"),
    ({"urlBlocklist": ["example.com:8080"]}, "https://example.com/", "Document", {}, None),
    ({"urlBlocklist": ["example.com:8080"]}, "https://www.example.com:8080/", "Document", {}, "urlBlocklist"),
    ({"urlBlocklist": ["example.com:443"]}, "https://example.com/", "Document", {}, "urlBlocklist"),
    ({"urlBlocklist": ["example.com:443"]}, "http://example.com/", "Document", {}, None),
    (
        {"urlBlocklist": ["https://a*b*c*d*e*f*g*h*i*j*k*l*m*n*o*p*q*r*s*t/*"]},
        "https://abcdefghijklmnopqrst/x",
        "XHR",
        {},
        "urlBlocklist",
    ),
    ({"urlBlocklist": ["Example.COM"]}, "https://example.com/", "Document", {}, "urlBlocklist"),
    ({"blockResourceTypes": ["image"]}, "https://x.test/p.png", "Image", {}, "blockResourceTypes"),
    ({"blockResourceTypes": ["image"]}, "https://x.test/p.js", "Script", {}, None),
    (
        {"blockResourceTypes": ["beacon"]},
        "https://x.test/b",
        "Ping",
        {"Content-Type": "text/plain"},
        "blockResourceTypes",
    ),
    ({"blockResourceTypes": ["beacon"]}, "https://x.test/b", "Ping", {"Ping-To": "https://x.test/"}, None),
    ({"blockResourceTypes": ["ping"]}, "https://x.test/b", "Ping", {"content-type": "text/ping"}, "blockResourceTypes"),
    ({"blockAds": True}, "https://securepubads.g.doubleclick.net/tag/js/gpt.js", "Script", {}, "blockAds"),
    ({"blockAds": True}, "https://www.google-analytics.com/analytics.js", "Script", {}, None),
    ({"blockTrackers": True}, "https://www.google-analytics.com/analytics.js", "Script", {}, "blockTrackers"),
    ({"blockTrackers": True}, "https://www.facebook.com/tr?id=1", "Image", {}, "blockTrackers"),
    ({"blockTrackers": True}, "https://www.facebook.com/profile", "Document", {}, None),
    ({"urlAllowlist": ["https://app.test/*"]}, "https://app.test/x", "Document", {}, None),
    ({"urlAllowlist": ["https://app.test/*"]}, "https://cdn.test/x", "Script", {}, "urlAllowlist"),
    # Every rule applies: a URL on the allow list is still refused by the block list.
    (
        {"urlAllowlist": ["app.test"], "urlBlocklist": ["https://app.test/ads/*"]},
        "https://app.test/ads/1",
        "Image",
        {},
        "urlBlocklist",
    ),
    # Only requests that reach the network.
    ({"urlAllowlist": ["app.test"]}, "data:text/plain,hi", "Other", {}, None),
]


@pytest.mark.parametrize("config, url, cdp_type, headers, rule", CASES)
def test_the_first_rule_that_refuses_is_named(config, url, cdp_type, headers, rule):
    r = rules(**config)
    verdict = r.verdict(url, cdp_type, headers)
    assert (verdict[0] if verdict else None) == rule
    if rule is not None:
        # The browser pauses every request a rule refuses (else it would load unseen).
        assert paused_for(r, url, cdp_type)


def test_without_an_allow_list_only_candidates_are_paused():
    r = rules(blockAds=True, urlBlocklist=["tracker.test"], blockResourceTypes=["font"])
    assert not paused_for(r, "https://app.test/main.js", "Script")
    assert paused_for(r, "https://app.test/f.woff2", "Font")
    assert paused_for(r, "https://x.tracker.test:8443/p", "XHR")
    assert r.fetch_patterns().count({"urlPattern": "*", "resourceType": "Font"}) == 1
    assert rules(urlAllowlist=["app.test"]).fetch_patterns() == [{"urlPattern": "*"}]


def test_no_rules_no_guard_and_event_urls_lose_their_query():
    assert TrafficRules.of({"saver": "none", "blockAds": False, "urlBlocklist": []}) is None
    assert TrafficRules.of(None) is None
    assert url_without_query("https://a.test/p?token=s3cret#frag") == "https://a.test/p"


def test_wildcards_match_as_globs_do_and_never_slowly():
    import random
    import time

    from app.cdp.traffic import Wildcard

    rng = random.Random(7)
    for _ in range(3000):
        text = "".join(rng.choice("ab/") for _ in range(rng.randint(0, 12)))
        pattern = "".join(rng.choice("ab/**") for _ in range(rng.randint(0, 8)))
        assert Wildcard(pattern).fullmatch(text) == fnmatch.fnmatchcase(text, pattern), (pattern, text)
    # A pattern a backtracking matcher would take ages over.
    hostile, url = "http://" + "*a" * 1000 + "*b", "http://" + "a" * 2040
    started = time.monotonic()
    assert Wildcard(hostile).fullmatch(url) is False
    assert time.monotonic() - started < 0.5
