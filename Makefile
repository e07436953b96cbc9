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

# A new verb declares `.PHONY: name` beside its own target (this line stays put).
.PHONY: help venv images gradescope-base lab-% test test-fast lint serve clean bench bench-batch
.PHONY: prairielearn-image pool-demo handout

help:
	@echo "make lab-3 [SUBMISSION=path] [MODE=docker|local] [OS=linux|macos|windows]"
	@echo "make test | make images | make serve MODEL=select | make clean"
	@echo "make lab-3 WORKERS=4 (Locust workers) | make bench (every server side by side)"
	@echo "make bench-batch [BENCH_BATCH_ARGS='--smoke'] (students/hour of the batch grader)"
	@echo "make lab-3-measure [SUBMISSION=path] (select/poll/epoll timed on your servers)"
	@echo "make handout LAB=lab-3 [OUT=handouts/lab-3] (the students' repository, no answers)"

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

# A stand-in for Gradescope's Ubuntu 22.04 autograder base, with no registry:
# see docker/gradescope-base.sh and docs/platforms.md.
gradescope-base:
	bash docker/gradescope-base.sh

# PrairieLearn's external-grader image (iolab-prairielearn:<hash>), built on the
# runtime image with no registry: see docker/prairielearn-image.sh and
# docs/gradescope-prairielearn.md.
prairielearn-image:
	bash docker/prairielearn-image.sh

# A lab's student handout: a git repository with its instructions, starter, the grader
# and its stack, a GitHub Classroom workflow, and no answers (README: Teaching with iolab).
LAB ?= lab-3
OUT ?= handouts/$(LAB)
handout: venv
	$(PYTHON) -m grader handout $(LAB) $(OUT)

# lab-3 step 5: select/poll/epoll timed on your servers as connections grow
# (local mode; writes results/lab-3/measure-<run-id>/measure.html). LEVELS=0,100,500
lab-%-measure: venv
	$(PYTHON) -m grader measure lab-$* $(if $(SUBMISSION),--submission $(SUBMISSION)) \
	  $(if $(LEVELS),--levels $(LEVELS))

# GNU make exits 2 whenever a command fails, so `echo $?` after make cannot tell a
# failed check from bad input; make's own last line ("make: *** [...] Error N") shows
# the grader's code N, and `.venv/bin/python -m grader lab-3 ...` (the command below)
# returns it as is (README: "Exit codes").
lab-%: venv
	@$(if $(filter docker,$(MODE)),bash docker/build-images.sh)
	$(if $(WORKERS),IOLAB_WORKERS=$(WORKERS)) $(PYTHON) -m grader lab-$* $(GRADE_ARGS)

# lab-1's connection-pool lesson (not graded): a new connection per request vs a
# pool, and the pool's ceiling, against your thread pool (or SERVER=path).
pool-demo: venv
	$(PYTHON) -m grader pool-demo $(if $(SERVER),--server $(SERVER))

# Five pytest-xdist workers on two cores: many tests wait (reply timeouts, the load
# lock), so with four both cores were 82% busy through a CI-settings run (/proc/stat
# each second) and with five 90%: 646.5 s -> 579-592 s (2026-11-30). Load phases still
# run one at a time (the suite's IOLAB_LOAD_LOCK, conftest.py). Six were a minute
# faster once but flaky (five timing failures in one run of a fresh clone). The
# longest tests go first (--dist load, whose scheduler conftest.py replaces:
# tests/longest_first.py). TEST_JOBS=0 runs the tests one by one.
TEST_JOBS ?= 5
test: venv
	@if docker info >/dev/null 2>&1; then bash docker/build-images.sh && bash docker/compose-v2.sh; \
	 elif [ "$$CI" = "true" ]; then echo "error: CI=true but no Docker engine is running" >&2; exit 2; fi
	$(PYTHON) -m pytest -n $(TEST_JOBS) --dist load

# Every check against its broken servers and every reference, RUNS times, quiet and
# beside a CPU hog: the table of failures/runs (tests/validity_table.py).
.PHONY: validity
RUNS ?= 50
VALIDITY_ARGS ?=
validity: venv
	$(PYTHON) tests/validity_table.py --runs $(RUNS) $(VALIDITY_ARGS) \
	  --out bench/results/$(shell date -u +%Y-%m-%d)-validity/table.md

# The quick tier for everyday work: no Docker, no load phases, no repeated runs.
test-fast: venv
	$(PYTHON) -m pytest -m "not docker and not slow" -n 4

lint: venv
	$(VENV)/bin/ruff check grader servers tests labs bench

# Grading a class on many machines (README.md): the Dask scheduler on one machine,
# a worker in the checkout of each grading machine (LOAD=1: one student, so one load
# phase, at a time there). Then: python -m grader batch lab-3 DIR --cluster tcp://HOST:8786
SCHEDULER ?= tcp://127.0.0.1:8786
.PHONY: scheduler worker
scheduler: venv
	$(VENV)/bin/dask scheduler --port 8786
worker: venv
	PYTHONPATH=$(CURDIR) $(VENV)/bin/dask worker $(SCHEDULER) --resources LOAD=1 --nthreads 1

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

# Students per hour of `python -m grader batch lab-3` on this machine (docker
# mode, -j 2, a class made of the reference servers, tests/broken/ and the
# starter; ~20 min): writes bench/results/<date>-batch-<label>/. See bench/batch.py.
bench-batch: venv
	@if docker info >/dev/null 2>&1; then bash docker/build-images.sh; fi
	$(PYTHON) -m bench.batch $(BENCH_BATCH_ARGS)
