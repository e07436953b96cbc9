#!/usr/bin/env bash
# A stand-in for Gradescope's default autograder base image, built without any
# container registry: `make gradescope-base`. What it copies, and the evidence
# for each package, is in docs/platforms.md ("Gradescope: the base image").
#
#   1. Hash this script (the package list lives here); if
#      iolab-gradescope-base:<hash12> exists, re-tag :latest, done.
#   2. Trust anchor: the Ubuntu archive key, taken from the ubuntu-keyring
#      .deb and kept only if its fingerprint is the one pinned below.
#   3. debootstrap Ubuntu 22.04 (jammy) minbase with the packages Gradescope's
#      base is known to have, then upgrade it from jammy-updates/-security.
#   4. `docker import` it with Gradescope's /autograder layout, root, and
#      /autograder as the working directory.
set -Eeuo pipefail

cd "$(dirname "$0")/.."                      # repo root
CACHE=.cache
IMAGE=iolab-gradescope-base
LABEL=org.iolab.project=iolab
SUITE=jammy
# Only what Gradescope's Ubuntu 22.04 base is documented or observed to have
# (docs/platforms.md): its harness runs on python3 (3.10 on jammy); setup.sh
# scripts call pip3 without installing it; dos2unix "is included in the base
# images now"; the build installs curl and unzip; the docs' own hardening
# example runs `adduser` there. python3-venv is NOT in this list on purpose:
# nothing shows Gradescope has it, so an autograder must not rely on it.
INCLUDE=python3,python3-pip,adduser,ca-certificates,curl,unzip,dos2unix
# Ubuntu Archive Automatic Signing Key (2018) <ftpmaster@ubuntu.com>: it signs
# jammy's Release files. Pinned so that an HTTP download cannot swap it.
ARCHIVE_KEY=F6ECB3762474EDA9D21B7022871920D1991BC93C
KEYRING_DEB=pool/main/u/ubuntu-keyring/ubuntu-keyring_2021.03.26_all.deb

log() { echo "[gradescope-base] $*"; }

# Any failing command ends the run with one line: the step and what to do.
STEP="starting"; HINT="see the output above"
trap 'echo "[gradescope-base] FAILED: $STEP. $HINT" >&2; exit 2' ERR
step() { STEP=$1; HINT=$2; }
# quiet LOG CMD...: run CMD with its output in LOG; on failure show LOG's tail.
quiet() {
    local out=$1; shift
    "$@" >"$out" 2>&1 || { tail -n 25 "$out" | sed 's/^/    /' >&2; return 1; }
}

# --- 1. input hash and the fast path -----------------------------------------
hash=$( { cat docker/gradescope-base.sh; echo "${UBUNTU_MIRROR:-}"; } \
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

arch=$(docker info --format '{{.Architecture}}')   # the daemon's: x86_64, aarch64
case $arch in
    x86_64)  deb_arch=amd64; default_mirror=http://archive.ubuntu.com/ubuntu ;;
    aarch64) deb_arch=arm64; default_mirror=http://ports.ubuntu.com/ubuntu-ports ;;
    *) step "choosing an Ubuntu mirror" "Unsupported architecture '$arch': Gradescope runs x86_64."
       false ;;
esac
mirror=${UBUNTU_MIRROR:-$default_mirror}

need_tool() {  # need_tool COMMAND DEBIAN-PACKAGE
    command -v "$1" >/dev/null && return 0
    step "installing $2" "Run: apt-get update && apt-get install -y $2"
    log "installing $2 (apt-get)"
    quiet "$CACHE/apt.log" apt-get update
    quiet "$CACHE/apt.log" env DEBIAN_FRONTEND=noninteractive apt-get install -y "$2"
}
need_tool debootstrap debootstrap
need_tool gpg gpg
need_tool curl curl

rootfs="$CACHE/gradescope-rootfs-$hash"
cleanup() { rm -rf "$rootfs" "$CACHE"/keyring.??????; }
trap cleanup EXIT

# --- 2. the archive key --------------------------------------------------------
# Debian has no Ubuntu keyring package, so take the key from Ubuntu's own
# keyring .deb, and keep only the key whose full fingerprint is pinned above.
keyring="$CACHE/ubuntu-archive-${ARCHIVE_KEY: -16}.gpg"
fetch_keyring() {
    local tmp; tmp=$(mktemp -d "$CACHE/keyring.XXXXXX")
    step "downloading the Ubuntu keyring from $mirror" \
         "Check that $mirror is reachable from this host (or set UBUNTU_MIRROR)."
    curl -fsS -o "$tmp/keyring.deb" "$mirror/$KEYRING_DEB"
    dpkg-deb -x "$tmp/keyring.deb" "$tmp/x"
    step "extracting the pinned Ubuntu archive key" \
         "The keyring no longer holds $ARCHIVE_KEY: update ARCHIVE_KEY/KEYRING_DEB in $0."
    gpg --batch --quiet --homedir "$tmp" --no-default-keyring --keyring "$tmp/all.gpg" \
        --import "$tmp/x/usr/share/keyrings/ubuntu-archive-keyring.gpg" 2>/dev/null
    gpg --batch --homedir "$tmp" --no-default-keyring --keyring "$tmp/all.gpg" \
        --export "$ARCHIVE_KEY" >"$tmp/one.gpg"
    gpg --batch --show-keys --with-colons "$tmp/one.gpg" 2>/dev/null \
        | grep -qx "fpr:::::::::$ARCHIVE_KEY:"
    mv "$tmp/one.gpg" "$keyring"
    rm -rf "$tmp"
}
[ -s "$keyring" ] || fetch_keyring

# --- 3. the root file system ---------------------------------------------------
dblog="$CACHE/gradescope-debootstrap.log"
step "debootstrap $SUITE from $mirror" \
     "Check that $mirror is reachable from this host (logs: $dblog, $dblog.inner)."
log "bootstrapping Ubuntu 22.04 ($SUITE, $deb_arch) from $mirror (takes a few minutes)"
rm -rf "$rootfs"
# One suite only: debootstrap 1.0.128's --extra-suites leaves it nothing to
# unpack for jammy, so the updates come from apt-get in the chroot below.
quiet "$dblog" debootstrap --variant=minbase --arch="$deb_arch" \
    --components=main,universe --include="$INCLUDE" --keyring="$keyring" \
    "$SUITE" "$rootfs" "$mirror" \
    || { cp "$rootfs/debootstrap/debootstrap.log" "$dblog.inner" 2>/dev/null; false; }

# The sources an Ubuntu 22.04 image ships with. Gradescope's base is kept
# current within 22.04 (python3 3.10.12 there; the release pocket has 3.10.4),
# so upgrade from -updates and -security.
cat >"$rootfs/etc/apt/sources.list" <<EOF
deb $mirror $SUITE main restricted universe multiverse
deb $mirror $SUITE-updates main restricted universe multiverse
deb $mirror $SUITE-security main restricted universe multiverse
EOF
uplog="$CACHE/gradescope-upgrade.log"
step "upgrading to $SUITE-updates and $SUITE-security" \
     "Check that $mirror is reachable from this host (log: $uplog)."
log "upgrading from $SUITE-updates and $SUITE-security"
in_root() { chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive "$@"; }
quiet "$uplog" in_root apt-get -q update
quiet "$uplog" in_root apt-get -q -y -o Dpkg::Options::=--force-confold dist-upgrade
in_root apt-get clean
: >"$rootfs/etc/resolv.conf"                  # Docker supplies its own at run time
# Gradescope's layout: the zip lands in source/, the harness fills
# submission/ and results/ at run time (docs/platforms.md).
mkdir -p "$rootfs"/autograder/{source,submission,results}
# Slim it like the runtime base: no apt caches, man pages or docs.
rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
       "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*
find "$rootfs"/usr/share/doc -type f ! -name copyright -delete

# --- 4. the image --------------------------------------------------------------
step "importing $tag" "Check free disk space and the Docker daemon."
log "importing $tag"
tar --numeric-owner -C "$rootfs" -c . | docker import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "WORKDIR /autograder" \
    --change "LABEL $LABEL" --change "LABEL org.iolab.image=gradescope-base" \
    --change 'CMD ["/bin/bash"]' \
    - "$tag" >/dev/null

step "checking $tag" "The image has no working python3 3.10: see $CACHE/gradescope-debootstrap.log."
pyver=$(docker run --rm --network none "$tag" python3 --version)
case $pyver in "Python 3.10."*) ;; *) echo "got: $pyver" >&2; false ;; esac
docker tag "$tag" "$IMAGE:latest"
log "built $tag (also $IMAGE:latest): $pyver"
