# iolab: the user's verbs. `make lab-3` grades your lab-3 server; `make test`
# runs the test suite. Everything installs itself (.venv, images) on first use.

PY        ?= python3
VENV      := .venv
PYTHON    := $(VENV)/bin/python
MODE      ?= docker
OS        ?= linux
SUBMISSION ?=
EXERCISE  ?=
MODEL     ?= select
PORT      ?= 9000
WORKERS   ?=
GRADE_ARGS = --mode $(MODE) --os $(OS) $(if $(SUBMISSION),--submission $(SUBMISSION)) \
             $(if $(EXERCISE),--exercise $(EXERCISE))

.PHONY: help venv images lab-% test test-fast lint serve clean bench

help:
	@echo "make lab-3 [SUBMISSION=path] [MODE=docker|local] [OS=linux|macos|windows]"
	@echo "make test | make images | make serve MODEL=select | make clean"
	@echo "make lab-3 WORKERS=4 (Locust workers) | make bench (every server side by side)"

# Not an editable install: the code runs in place from the checkout (pyproject's
# packages = []), so -e would add nothing but setuptools' BuildBackendWarning box.
$(VENV)/.installed: pyproject.toml
	$(PY) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q '.[test]'
	touch $@

venv: $(VENV)/.installed

# Builds every image the stack uses, with no registry: see docker/build-images.sh.
images:
	bash docker/build-images.sh

# GNU make exits 2 whenever a command fails, so `echo $?` after make cannot tell a
# failed check from bad input; make's own last line ("make: *** [...] Error N") shows
# the grader's code N, and `.venv/bin/python -m grader lab-3 ...` (the command below)
# returns it as is (README: "Exit codes").
lab-%: venv
	@$(if $(filter docker,$(MODE)),bash docker/build-images.sh)
	$(if $(WORKERS),IOLAB_WORKERS=$(WORKERS)) $(PYTHON) -m grader lab-$* $(GRADE_ARGS)

test: venv
	@if docker info >/dev/null 2>&1; then bash docker/build-images.sh && bash docker/compose-v2.sh; \
	 elif [ "$$CI" = "true" ]; then echo "error: CI=true but no Docker engine is running" >&2; exit 2; fi
	$(PYTHON) -m pytest

# The quick tier for everyday work: no Docker, no load phases, no repeated runs.
test-fast: venv
	$(PYTHON) -m pytest -m "not docker and not slow"

lint: venv
	$(VENV)/bin/ruff check grader servers tests labs bench

# Start one reference server alone on loopback, to poke with `nc localhost 9000`.
serve:
	HOST=127.0.0.1 PORT=$(PORT) IOLAB_OS=$(OS) PYTHONPATH=servers/osprofile \
	  $(PY) servers/$(MODEL)_server.py

# Remove whatever earlier runs left: containers, networks, volumes of the compose
# projects the grader makes (iolab-<run-id>-<exercise>) and anything labelled
# org.iolab.project=iolab. The remedy after a grader killed with SIGKILL.
# CLEAN_PREFIX narrows it to some projects (the tests use it on their own).
CLEAN_PREFIX ?= iolab-
clean:
	-@docker ps -aq --filter label=com.docker.compose.project \
	  | xargs -r docker inspect -f '{{.Id}} {{index .Config.Labels "com.docker.compose.project"}}' \
	  | awk -v p='$(CLEAN_PREFIX)' 'index($$2, p) == 1 {print $$1}' | xargs -r docker rm -f -v >/dev/null
	-@$(if $(filter iolab-,$(CLEAN_PREFIX)),docker ps -aq --filter label=org.iolab.project=iolab | xargs -r docker rm -f -v >/dev/null)
	-@for kind in network volume; do \
	  docker $$kind ls --filter label=com.docker.compose.project \
	    --format '{{.Name}} {{.Label "com.docker.compose.project"}}' \
	    | awk -v p='$(CLEAN_PREFIX)' 'index($$2, p) == 1 {print $$1}' | xargs -r docker $$kind rm >/dev/null; \
	done
	-@$(if $(filter iolab-,$(CLEAN_PREFIX)),docker network ls -q --filter label=org.iolab.project=iolab | xargs -r docker network rm >/dev/null)
	-@$(if $(filter iolab-,$(CLEAN_PREFIX)),docker volume ls -q --filter label=org.iolab.project=iolab | xargs -r docker volume rm >/dev/null)

# Every reference server side by side on this machine (local mode, ~7 min):
# writes bench/results/<date>/ (CSV, SVG charts, summary.md). uvloop is installed
# for the benchmark only; without it the uvloop baseline is left out.
bench: venv
	-@$(VENV)/bin/pip install -q 'uvloop>=0.19' 2>/dev/null || echo "uvloop unavailable: no uvloop baseline"
	$(PYTHON) -m bench.run $(BENCH_ARGS)
