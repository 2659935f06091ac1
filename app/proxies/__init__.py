"""Saved proxies: upstream proxies a browser's traffic leaves through (after the egress policy)."""
