#!/usr/bin/env bash
# Make a Docker engine answer and build the images the Docker tier needs, offline.
#
# - Installs Debian's docker.io (and docker-compose, debootstrap) when missing, as root.
# - Starts dockerd when no engine answers: vfs storage, no iptables, no bridge (what runs on these
#   machines; containers in tests use host networking).
# - Makes `debian:bookworm-slim` with debootstrap + `docker import` when it is missing (no registry
#   is reachable here), then builds the runtime image, the API image and the test images for
#   PostgreSQL and Redis. Builds are skipped when the image is newer than its inputs, so a second
#   run on the same machine is fast.
set -euo pipefail
cd "$(dirname "$0")/.."
as_root() { [ "$(id -u)" = "0" ]; }
engine_up() { docker info >/dev/null 2>&1; }

need=()
command -v dockerd >/dev/null 2>&1 || command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || need+=(docker-compose)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [ ${#need[@]} -gt 0 ]; then
  as_root || { echo "Missing: ${need[*]}; install them: sudo apt-get install ${need[*]}" >&2; exit 1; }
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

if ! engine_up; then
  as_root || { echo "No Docker engine answers and this is not root: start dockerd" >&2; exit 1; }
  command -v dockerd >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >/dev/null; }
  nohup dockerd --storage-driver=vfs --iptables=false --bridge=none >/var/log/bctrl-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do engine_up && break; sleep 0.5; done
  engine_up || { echo "dockerd did not start; see /var/log/bctrl-dockerd.log" >&2; exit 1; }
fi

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

if ! has_image debian:bookworm-slim; then
  echo "Making debian:bookworm-slim with debootstrap (no registry is reachable)..."
  root=$(mktemp -d /tmp/bctrl-bookworm.XXXXXX)
  debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >/tmp/bctrl-debootstrap.log 2>&1 \
    || { echo "debootstrap failed; see /tmp/bctrl-debootstrap.log" >&2; exit 1; }
  # Security updates too, as the registry's image would have them.
  echo "deb http://deb.debian.org/debian-security bookworm-security main" >>"$root/etc/apt/sources.list"
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
  chmod 0755 "$root"  # mktemp made it 0700, and it becomes the image's /
  tar -C "$root" -c . | docker import - debian:bookworm-slim >/dev/null
  rm -rf "$root"
fi

# Build $1 (tag) from $2 (context dir) with $3 (Dockerfile) unless an image built from the same
# inputs exists: a hash of the inputs' contents is kept as a label, so a fresh clone reuses it.
inputs_hash() {
  find "$@" -type f -not -path '*/__pycache__/*' -not -name '*.pyc' -print0 | sort -z \
    | xargs -0 sha256sum | sha256sum | cut -c1-32
}
build() {
  local tag=$1 context=$2 dockerfile=$3 want have
  shift 3
  want=$(inputs_hash "$dockerfile" "$@")
  have=$(docker image inspect -f '{{ index .Config.Labels "io.bctrl.inputs" }}' "$tag" 2>/dev/null || true)
  [ "$want" = "$have" ] && return 0
  echo "Building $tag..."
  DOCKER_BUILDKIT=0 docker build -q --network host --label "io.bctrl.inputs=$want" -t "$tag" \
    --build-arg "BUILD_CA_CERT=$extra_ca" -f "$dockerfile" "$context" >/dev/null
}

# Certificates this machine adds to the system's (a TLS-intercepting egress proxy's CA): package
# downloads inside a build must trust them too. Images that don't declare the argument ignore it.
extra_ca=$(cat /usr/local/share/ca-certificates/*.crt 2>/dev/null || true)

build bctrl/chromium:latest runtime_images/chromium runtime_images/chromium/Dockerfile runtime_images/chromium
if [ "${BCTRL_DOCKER_ONLY_RUNTIME:-}" != "1" ]; then
  build bctrl/server:latest . Dockerfile .dockerignore app migrations pyproject.toml alembic.ini README.md
  build bctrl/test-postgres:latest tests/docker/postgres tests/docker/postgres/Dockerfile tests/docker/postgres
  build bctrl/test-redis:latest tests/docker/redis tests/docker/redis/Dockerfile tests/docker/redis
fi
# Layers of images replaced by a rebuild; vfs keeps a full copy of each.
docker image prune -f >/dev/null 2>&1 || true
