"""Admission: the durable queue of browser starts, per-deployment/account/space limits, the capacity signal."""
