#!/usr/bin/env bash
# PrairieLearn's grader host runs this (the question's externalGradingOptions
# entrypoint) as root in a fresh container of the iolab PrairieLearn image, with
# the job in /grade: the upload in /grade/student, course files in
# /grade/serverFilesCourse. It grades one exercise with iolab's grader in local
# mode, the server as an unprivileged, limited user (IOLAB_SANDBOX=1), and writes
# /grade/results/results.json in PrairieLearn's format, then exits 0 (PrairieLearn
# reads results only after a zero exit).
#   run.sh LAB EXERCISE [BUDGET]     e.g. run.sh lab-3 select 240
set -u
LAB=$1 EXERCISE=$2 BUDGET=${3:-240}
chmod 700 /grade        # out of reach of the server under test: tests, course files
mkdir -p /grade/results
# Calibration: the lab's reference servers come from the course's private files
# (they are not in the public image): serverFilesCourse/iolab/servers/*.py.
if [ -d /grade/serverFilesCourse/iolab/servers ]; then
    cp -n /grade/serverFilesCourse/iolab/servers/*.py /opt/iolab/servers/ 2>/dev/null || true
fi
cd /opt/iolab
export IOLAB_SANDBOX=1 PYTHONDONTWRITEBYTECODE=1
timeout -k 10 $((BUDGET + 50)) python -m grader.export.autograde --budget "$BUDGET" \
    prairielearn "$LAB" /grade/student/server.py /grade/results/results.json "$EXERCISE"
exit 0
