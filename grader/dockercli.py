"""The Docker engine through its CLIs: which compose command, is the engine
there, and removing what a compose project left.

The grader speaks to Docker through the `docker` and compose command lines
(no SDK): they are the commands a student can run to see what happened.
Compose v2 is used where it exists (`docker compose`, or the copy
docker/compose-v2.sh puts under .cache), `docker-compose` 1.29 otherwise;
IOLAB_COMPOSE overrides both.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import subprocess

from grader.errors import UsageError
from grader.paths import REPO

IMAGE = "iolab-runtime:latest"
ACTIVE_PROJECTS: set[str] = set()  # started and not yet torn down


def docker(*args: str, timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    """`docker ARGS...`, output captured as text."""
    return subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout,
                          **kwargs)


# Compose v2 as docker/compose-v2.sh installs it (a docker CLI plugin under the
# checkout's .cache); the binary also runs on its own, without DOCKER_CONFIG.
COMPOSE_V2 = REPO / ".cache" / "docker" / "cli-plugins" / "docker-compose"


def compose_command() -> list[str]:
    """Compose v2 where it exists — `docker compose`, else the checkout's own copy
    (docker/compose-v2.sh) — else `docker-compose` (1.29). v2 first: it starts and
    stops a stack in about half the time of 1.29 (a Go binary, not a Python program
    importing docker-py on every call). IOLAB_COMPOSE overrides all of them."""
    override = os.environ.get("IOLAB_COMPOSE")
    if override:
        return override.split()
    return list(_found_compose())


@functools.cache
def _found_compose() -> tuple[str, ...]:
    if shutil.which("docker") and subprocess.run(
            ["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ("docker", "compose")
    if os.access(COMPOSE_V2, os.X_OK):
        return (str(COMPOSE_V2),)
    if shutil.which("docker-compose"):
        return ("docker-compose",)
    raise UsageError("neither `docker compose` nor `docker-compose` is installed: "
                     "install Docker Compose, or grade with --mode local")


def require_engine(image: str = IMAGE) -> None:
    """Docker mode needs a running engine and the images; say so in one line."""
    if not shutil.which("docker"):
        raise UsageError("docker is not installed: install Docker Engine, or use --mode local")
    if subprocess.run(["docker", "info"], capture_output=True).returncode != 0:
        raise UsageError("the Docker engine is not running (docker info failed): start it "
                         "(e.g. `sudo systemctl start docker`), or use --mode local")
    if subprocess.run(["docker", "image", "inspect", image], capture_output=True).returncode:
        raise UsageError(f"the image {image} is missing: run `make images` first")


def remove_project(project: str) -> None:
    """Remove any container, network or volume of a compose project that is left."""
    label = f"label=com.docker.compose.project={project}"
    for ls, rm in ((["ps", "-aq"], ["rm", "-f", "-v"]), (["network", "ls", "-q"], ["network", "rm"]),
                   (["volume", "ls", "-q"], ["volume", "rm", "-f"])):
        try:
            ids = docker(*ls, "--filter", label).stdout.split()
            if ids:
                docker(*rm, *ids, timeout=120)
        except (OSError, subprocess.SubprocessError):
            pass


@atexit.register
def _remove_active_projects() -> None:
    """Last resort: a second Ctrl-C that cut a teardown short still leaves nothing."""
    for project in sorted(ACTIVE_PROJECTS):
        remove_project(project)
