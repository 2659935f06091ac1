"""The Docker tier (`make test-docker`): real `bctrl-server serve` processes with BCTRL_DRIVER=docker
against a real Docker engine, the runtime image built from runtime_images/chromium, host networking.
scripts/ensure-docker.sh starts the engine and builds the images first."""

from __future__ import annotations

import docker
import docker.errors
import pytest
from bctrl import Bctrl

from tests.e2e.conftest import cluster, pages, stop_in_teardown  # noqa: F401  (the page server fixture)

DOCKER_ENV = dict(
    BCTRL_DRIVER="docker",
    BCTRL_DOCKER_NETWORK="host",
    BCTRL_DOCKER_IMAGE="bctrl/chromium:latest",
    BCTRL_LAUNCH_TIMEOUT_SECONDS="60",
)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/docker/" in str(item.fspath):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def engine():
    client = docker.from_env()
    client.ping()
    yield client
    client.close()


@pytest.fixture(scope="session")
def dlive(tmp_path_factory):
    with cluster(tmp_path_factory.mktemp("docker"), **DOCKER_ENV) as servers:
        yield servers[0]


@pytest.fixture
def stop_afterwards(dlive):
    """As tests/e2e's: the runtime is stopped in teardown, so no container is left on the shared server."""
    yield from stop_in_teardown(dlive)


def containers_of(engine, runtime_id: str) -> list:
    return engine.containers.list(all=True, filters={"label": f"io.bctrl.runtime={runtime_id}"})


def gone(engine, container_id: str) -> bool:
    try:
        engine.containers.get(container_id)
    except docker.errors.NotFound:
        return True
    return False


@pytest.fixture
def dclient(dlive):
    """The official SDK's client of the Docker-driver server."""
    return Bctrl(token=dlive.api_key, base_url=dlive.url)
