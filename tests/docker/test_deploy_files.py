"""The files of deploy/ as their tools read them: the stack file as `docker stack config` resolves it (the
swarm driver, the shared database, Redis and bucket, every service on the nodes' network), and the
balancer's nginx config as `nginx -t` accepts it, with the proxy settings the test tier's balancer runs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.docker.lb import nginx_binary

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
ENV = {
    "BCTRL_API_KEY": "k" * 48,
    "BCTRL_PUBLIC_URL": "https://browsers.example.com",
    "BCTRL_S3_ACCESS_KEY": "access",
    "BCTRL_S3_SECRET_KEY": "secret",
    "BCTRL_DATA_HOST": "data-1",
}


def _stack(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["docker", "stack", "config", "-c", str(DEPLOY / "stack.yml")],
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", **env},
        cwd=DEPLOY,
        capture_output=True,
        text=True,
    )


def test_the_stack_file_resolves_to_replicas_on_the_swarm_driver():
    resolved = _stack(ENV)
    assert resolved.returncode == 0, resolved.stderr
    config = yaml.safe_load(resolved.stdout)
    services = config["services"]
    assert set(services) == {"lb", "api", "postgres", "redis", "s3"}
    api = services["api"]
    env = api["environment"]
    assert env["BCTRL_DRIVER"] == "swarm" and env["BCTRL_PUBLIC_URL"] == ENV["BCTRL_PUBLIC_URL"]
    assert (
        env["BCTRL_DATABASE_URL"].endswith("@data-1:5432/bctrl") and env["BCTRL_REDIS_URL"] == "redis://data-1:6379/0"
    )
    assert env["BCTRL_STORAGE_URL"].startswith("s3://") and env["BCTRL_STORAGE_ENDPOINT"] == "http://data-1:9000"
    assert api["deploy"]["replicas"] >= 2 and "node.role == manager" in api["deploy"]["placement"]["constraints"]
    assert "/var/run/docker.sock:/var/run/docker.sock" in [
        f"{v['source']}:{v['target']}" if isinstance(v, dict) else v for v in api["volumes"]
    ]
    # Every service on the nodes' own network: browsers and replicas reach each other without an overlay.
    assert config["networks"]["hostnet"] == {"external": True, "name": "host"}
    assert all(set(s["networks"]) == {"hostnet"} for s in services.values())
    # The balancer runs the same nginx settings as the test tier's.
    targets = {c["source"]: c["target"] for c in services["lb"]["configs"]}
    assert targets == {"nginx-conf": "/etc/nginx/nginx.conf", "bctrl-proxy-conf": "/etc/nginx/bctrl.conf"}


def test_the_stack_file_refuses_to_deploy_without_its_secrets():
    missing = _stack({k: v for k, v in ENV.items() if k != "BCTRL_API_KEY"})
    assert missing.returncode != 0 and "BCTRL_API_KEY" in missing.stderr


def test_the_balancer_config_is_valid_nginx(tmp_path):
    # The stack's config as nginx reads it, with its managers' names swapped for an address this host has.
    (tmp_path / "bctrl.conf").write_text((DEPLOY / "nginx/bctrl.conf").read_text())
    config = (DEPLOY / "nginx/nginx.conf").read_text()
    config = config.replace("/etc/nginx/bctrl.conf", str(tmp_path / "bctrl.conf"))
    for name in ("manager-1", "manager-2"):
        config = config.replace(f"server {name}:", "server 127.0.0.1:")
    config = config.replace("listen 8080;", "listen 127.0.0.1:1;")
    (tmp_path / "nginx.conf").write_text(config.replace("http {", f"pid {tmp_path}/nginx.pid;\nhttp {{", 1))
    checked = subprocess.run(
        [nginx_binary(), "-t", "-c", str(tmp_path / "nginx.conf"), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr
