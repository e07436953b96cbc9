#!/usr/bin/env bash
# Build the iolab runtime image without needing a container registry
# (ARCHITECTURE.md, Contract 6). Run from the repo root: `make images`.
#
#   1. Hash our inputs; if iolab-runtime:<hash12> exists, re-tag :latest, done.
#   2. Base image: python:3.12-slim if we have it or can pull it, otherwise a
#      Debian bookworm root file system made with debootstrap, `docker import`ed
#      as iolab-base:<basehash> (built once, reused until its inputs change).
#   3. Download a wheelhouse on the host for the base's Python version.
#   4. `docker build` offline from that wheelhouse (classic builder).
set -Eeuo pipefail

cd "$(dirname "$0")/.."                      # repo root
CACHE=.cache
IMAGE=iolab-runtime
LABEL=org.iolab.project=iolab
SUITE=bookworm
INCLUDE=python3,python3-venv,procps,strace,ca-certificates

log() { echo "[images] $*"; }

# Any failing command ends the run with one line: the step and what to do.
STEP="starting"; HINT="see the output above"
trap 'echo "[images] FAILED: $STEP. $HINT" >&2; exit 2' ERR
step() { STEP=$1; HINT=$2; }
# quiet LOG CMD...: run CMD with its output in LOG; on failure show LOG's tail.
quiet() {
    local out=$1; shift
    "$@" >"$out" 2>&1 || { tail -n 25 "$out" | sed 's/^/    /' >&2; return 1; }
}

# --- 1. input hash and the fast path -----------------------------------------
hash=$(cat docker/Dockerfile docker/requirements.txt docker/build-images.sh \
       | sha256sum | cut -c1-12)
tag="$IMAGE:$hash"
if docker image inspect "$tag" >/dev/null 2>&1; then
    docker tag "$tag" "$IMAGE:latest"
    log "$tag is up to date"
    exit 0
fi

step "checking Docker" "Is the Docker daemon running and may you use it?"
docker info >/dev/null
mkdir -p "$CACHE"

# --- 2. the base image -------------------------------------------------------
# Debian mirror: the first .../debian URL in the host's apt sources.
debian_mirror() {
    local url
    url=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
              /etc/apt/sources.list.d/*.sources 2>/dev/null \
          | grep -E '^[[:space:]]*(URIs:|deb[[:space:]])' | grep -oE 'https?://[^[:space:]]+' \
          | grep -E '/debian/?$' | head -n1 || true)
    echo "${url:-http://deb.debian.org/debian}"
}

arch=$(docker info --format '{{.Architecture}}')   # the daemon's: x86_64, aarch64
case $arch in x86_64) deb_arch=amd64 ;; aarch64) deb_arch=arm64 ;; *) deb_arch=$arch ;; esac
mirror=$(debian_mirror)
debootstrap_args=(--variant=minbase --arch="$deb_arch" --include="$INCLUDE"
                  "$SUITE")
# "v2": bump it when bootstrap_base changes what goes into the base.
basehash=$(echo "v2 ${debootstrap_args[*]} $mirror" | sha256sum | cut -c1-12)
debian_base="iolab-base:$basehash"

bootstrap_base() {
    local rootfs="$CACHE/rootfs-$basehash"
    if ! command -v debootstrap >/dev/null; then
        step "installing debootstrap" "Run: apt-get update && apt-get install -y debootstrap"
        log "installing debootstrap (apt-get)"
        quiet "$CACHE/apt.log" apt-get update
        quiet "$CACHE/apt.log" env DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap
    fi
    step "debootstrap $SUITE from $mirror" \
         "Check that $mirror is reachable from this host (log: $CACHE/debootstrap.log)."
    log "bootstrapping a Debian $SUITE base from $mirror (takes a few minutes)"
    rm -rf "$rootfs"
    quiet "$CACHE/debootstrap.log" debootstrap "${debootstrap_args[@]}" "$rootfs" "$mirror"
    # Slim it: no container reaches the archive (apt caches are dead weight),
    # and nobody reads man pages, docs or translations in there (~50 MB).
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
           "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/*/
    find "$rootfs"/usr/share/doc -type f ! -name copyright -delete

    step "importing the base image" "Check free disk space and the Docker daemon."
    log "importing $debian_base"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
        --change "LABEL $LABEL" --change 'CMD ["/bin/bash"]' \
        - "$debian_base" >/dev/null
    rm -rf "$rootfs"
}

step "choosing a base image" "see the output above"
if docker image inspect python:3.12-slim >/dev/null 2>&1; then
    base=python:3.12-slim
elif docker image inspect "$debian_base" >/dev/null 2>&1; then
    base=$debian_base
elif log "pulling python:3.12-slim" && timeout 60 docker pull -q python:3.12-slim >/dev/null 2>&1; then
    base=python:3.12-slim
else
    log "no registry: building our own base image"
    bootstrap_base
    base=$debian_base
fi
log "base image: $base"

step "reading the Python version of $base" \
     "The base image must have python3; try: docker rmi $base, then rerun."
pyver=$(docker run --rm --network none "$base" \
        python3 -c 'import sys;print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
log "python in image: $pyver"

# --- 3. the wheelhouse, downloaded on the host --------------------------------
ctx=$(mktemp -d "$CACHE/ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
cp docker/requirements.txt "$ctx/requirements.txt"
mkdir "$ctx/wheels"

# The host's PIP_FIND_LINKS points at a local wheel dir: the wheelhouse must
# reflect PyPI, so drop it (and any user pip config) for these commands.
hostpip() { env -u PIP_FIND_LINKS PIP_CONFIG_FILE=/dev/null python3 -m pip "$@"; }
download() {
    hostpip download -q --only-binary=:all: --python-version "$pyver" --implementation cp \
        --platform "manylinux_2_28_$arch" --platform "manylinux_2_17_$arch" \
        --platform "manylinux2014_$arch" --platform "linux_$arch" \
        -d "$ctx/wheels" -r docker/requirements.txt "$@"
}

step "downloading wheels for Python $pyver/$arch" \
     "Check that PyPI is reachable from this host, or that every package in docker/requirements.txt has a wheel for Python $pyver."
log "downloading wheels for Python $pyver ($arch)"
if ! download 2>"$CACHE/pip.err"; then
    # Some dependency ships only an sdist. Build wheels on the host, keep the
    # pure-Python ones (py3-none-any) and resolve again with them available.
    tail -n 2 "$CACHE/pip.err" | sed 's/^/[images]   pip: /'
    log "some package has no wheel; building pure-Python wheels on the host"
    pure="$ctx/pure"
    hostpip wheel -q -w "$pure" -r docker/requirements.txt
    find "$pure" -name '*.whl' ! -name '*-none-any.whl' -delete
    download --find-links "$pure"
    cp "$pure"/*.whl "$ctx/wheels/" 2>/dev/null || true
    rm -rf "$pure"
fi
log "wheelhouse: $(ls "$ctx/wheels" | wc -l) wheels, $(du -sh "$ctx/wheels" | cut -f1)"

# --- 4. the image ------------------------------------------------------------
step "building $tag" "Full log: $CACHE/build.log; the wheelhouse may lack a package."
log "building $tag"
quiet "$CACHE/build.log" env DOCKER_BUILDKIT=0 docker build --build-arg "BASE=$base" \
    --label "$LABEL" -t "$tag" -f docker/Dockerfile "$ctx"
# Drop the untagged image of the Dockerfile's first stage (venv + wheels).
docker image prune -f --filter label=org.iolab.stage=venv >/dev/null
docker tag "$tag" "$IMAGE:latest"
log "built $tag (also $IMAGE:latest)"
