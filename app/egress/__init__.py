"""Egress control for browsers: every connection a browser makes goes through this server's own
forward proxy, which refuses destinations the operator's policy (`BCTRL_BROWSER_EGRESS`) forbids."""
