#!/usr/bin/env bash
# Build iolab's PrairieLearn external-grader image, with no registry:
# `make prairielearn-image`. Prints the tag (iolab-prairielearn:<hash12>, also
# :latest) on stdout; progress goes to stderr.
#
#   1. The runtime image it builds on (docker/build-images.sh; a no-op when current).
#   2. A build context: grader/, servers/osprofile + platforms.py, the lab.yaml of
#      every server lab (not lab-0's module tests, not the reference servers: the
#      image is public once pushed), grader/export/scripts/prairielearn/run.sh.
#   3. Hash the context and the runtime image's id; if the tag exists, done.
#   4. `docker build` offline (classic builder) from docker/prairielearn.Dockerfile.
# To use it in a course: docker tag it as YOU/iolab-prairielearn:TAG, push it to
# Docker Hub (linux/amd64), and name it in the question's info.json (docs/gradescope-prairielearn.md).
set -Eeuo pipefail
cd "$(dirname "$0")/.."
IMAGE=iolab-prairielearn
log() { echo "[prairielearn-image] $*" >&2; }
trap 'echo "[prairielearn-image] FAILED at line $LINENO: see the output above" >&2; exit 2' ERR

bash docker/build-images.sh >&2
runtime=$(docker image inspect -f '{{.Id}}' iolab-runtime:latest)

ctx=$(mktemp -d "${TMPDIR:-/tmp}/iolab-pl-ctx.XXXXXX")
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/iolab/servers" "$ctx/iolab/labs"
tar -c --exclude=__pycache__ --exclude='*.pyc' grader servers/osprofile servers/platforms.py \
    | tar -x -C "$ctx/iolab"
for spec in labs/*/lab.yaml; do
    grep -q 'kind: *module' "$spec" && continue   # module labs: not on PrairieLearn
    mkdir -p "$ctx/iolab/$(dirname "$spec")"
    cp "$spec" "$ctx/iolab/$spec"
done
cp grader/export/scripts/prairielearn/run.sh "$ctx/iolab/run.sh"
cp docker/prairielearn.Dockerfile "$ctx/Dockerfile"

hash=$( { echo "$runtime"; (cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum); } \
        | sha256sum | cut -c1-12)
tag="$IMAGE:$hash"
if ! docker image inspect "$tag" >/dev/null 2>&1; then
    log "building $tag"
    DOCKER_BUILDKIT=0 docker build -q --network none --label org.iolab.project=iolab \
        --build-arg "BASE=$runtime" -t "$tag" "$ctx" >&2
fi
docker tag "$tag" "$IMAGE:latest"
log "$tag (also $IMAGE:latest)"
echo "$tag"
