"""The fault infrastructure itself: private services start, stop and come back on their own ports."""

from __future__ import annotations

from tests.faults.conftest import first_2xx_after


def test_private_services_restart_and_server_runs_on_them(private_pg, private_redis, fault_server):
    assert private_pg.port != 5432 and private_redis.port != 6379
    server = fault_server()
    with server.client() as client:
        assert client.get("/readyz").status_code == 200
        private_pg.restart()
        private_redis.restart()
        seconds, _ = first_2xx_after(client, "GET", "/v1/spaces")
        assert seconds < 30
        first_2xx_after(client, "GET", "/readyz", timeout=10)
