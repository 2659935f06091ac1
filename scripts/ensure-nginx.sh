#!/usr/bin/env bash
# Make sure an nginx binary exists for the multi-replica tier (tests/docker/test_replicas.py, bench/replicas.py):
# they run their own nginx processes on loopback ports with a config in a temp dir, never the system service.
# Installs Debian's nginx package when missing (as root), without starting its service.
set -euo pipefail
if command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; then exit 0; fi
if [ "$(id -u)" != "0" ] || ! command -v apt-get >/dev/null 2>&1; then
  cat >&2 <<'MSG'
nginx is missing (the load balancer of the multi-replica tests). Install it with:
    sudo apt-get install nginx
The tests run their own nginx processes; the system service need not run.
MSG
  exit 1
fi
echo "==> nginx is missing: installing Debian's nginx package (about 2 MB, seconds)" >&2
# Debian's way to keep a package's service from starting at install (policy-rc.d answering 101):
# put one in place only for this install when the machine has none.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 0755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi
apt-get update -q
if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx; then
  echo "Installing nginx failed (see apt-get's output above); install it yourself: apt-get install nginx" >&2
  exit 1
fi
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || {
  echo "nginx was installed but no nginx binary is on PATH or at /usr/sbin/nginx" >&2
  exit 1
}
