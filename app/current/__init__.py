"""The current API generation (`BCTRL-Version: 2026-10-03`, the bctrl 0.3 client): its routers and wire
models over the same services as the seed and flat routes (the bctrl 0.3 SDK)."""
