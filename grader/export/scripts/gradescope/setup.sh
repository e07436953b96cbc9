#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image
# (the zip is unpacked in /autograder/source). It installs the grader's Python
# packages from the wheels in the zip, so it needs no network, into
# /autograder/source/site: beside the system python3, never over it (Gradescope's
# own harness runs on that python3 with its own packages).
# Made by `python -m grader export gradescope` (iolab); see docs/gradescope-prairielearn.md.
set -euo pipefail
cd /autograder/source
python3 -m pip install --no-index --no-cache-dir --disable-pip-version-check \
    --find-links wheels --target site -r wheels/requirements.txt
# Fail the build now rather than at the first submission.
PYTHONPATH=site python3 -c 'import locust, yaml, jinja2; print("iolab: packages ready")'
