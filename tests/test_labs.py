"""Every lab, graded for real, under every OS profile: its starter fails with a
reason per failed check, its reference passes with full marks wherever its
exercises run (an exercise or check an OS cannot pass is reported unavailable,
with the reason, never failed).

Local mode for all labs; docker mode for lab-3's starter (every exercise's starter in
its stack). Docker mode for lab-3's reference, and a single file graded as the select
exercise, are test_grading's: the same gradings through the command line.
To stay fast, each test grades a temporary copy of the lab whose load phase
lasts 2 s; the starter runs, and the reference runs under the emulated macos and
windows profiles, drop the load checks (they judge the submission against the
same reference under the same profile on the same machine; the profile changes what
the network and model checks see) and the starter runs shorten the network
checks' timeouts (a starter fails them by timing out). A multi-exercise
reference is a temporary submission folder assembling the reference servers
into the exercises' folders.
"""

from __future__ import annotations

import pytest
from conftest import ALL_LABS, lab_variant, leftovers_of, quiet, reference_submission

from grader.labspec import load_lab
from grader.results import write_all
from grader.runner import grade
from servers.platforms import OSES

pytestmark = pytest.mark.slow

TIMEOUT_CHECKS = {"line.basic", "line.split", "line.pipelined", "line.large",
                  "robust.silent_client", "robust.reset", "robust.eof", "robust.concurrent",
                  "robust.thread_ceiling", "robust.refuse_past_ceiling",
                  "robust.refuse_past_fd_setsize"}
# A starter run waits out what its flaws make it fail; it is only asked to fail with a
# reason, so it waits 1.5 s, not the lab's 3-10 s (lab-1's starter, quiet: 54 s -> 44 s).
STARTER_PARAMS = {check: {"timeout": 1.5} for check in TIMEOUT_CHECKS} | {
    "robust.no_zombies": {"wait": 1.5}}


def run(tmp, name: str, starter: bool, mode: str = "local", submission=None,
        os_name: str = "linux"):
    """Grade a quick copy of lab `name`: a starter run drops the load phase and shortens
    the reply timeouts it would only sit out; a reference run keeps a 2 s load under
    linux (and drops it under the other profiles, to stay quick)."""
    lab = lab_variant(tmp, name, drop_load=starter or os_name != "linux",
                      params=STARTER_PARAMS if starter else None)
    report = grade(lab, submission or lab.starter, mode, os_name, tmp / "results",
                   progress=quiet)
    write_all(report)
    assert (report.folder / "results.json").is_file()
    return report


def table(report) -> str:
    return "\n".join(f"{r.exercise}/{r.check}: {r.outcome.status} {r.score:g}/{r.max_score:g} "
                     f"{r.outcome.explain()[:300]}" for r in report.results)


def assert_fails_with_reasons(report) -> None:
    failed = [r for r in report.results
              if not r.outcome.passed and r.outcome.status != "unavailable"]
    assert not report.passed and failed, table(report)
    for r in failed:
        assert r.outcome.status == "failed", table(report)  # never an error of the grader
        text = r.outcome.explain()
        if r.outcome.skipped:  # a crash kept it from running: the crash is its reason
            assert text.startswith("not run: ") and "exited" in text, f"{r.exercise}/{r.check}: {text}"
            continue
        assert "expected" in text and "hint:" in text, f"{r.exercise}/{r.check}: {text}"


def assert_full_marks(report) -> None:
    assert report.passed, table(report)
    counted = [r for r in report.results if r.outcome.status != "unavailable"]
    assert sum(r.score for r in counted) == sum(r.max_score for r in counted) > 0, table(report)
    for r in report.results:  # what is not run says why
        assert r.outcome.status != "unavailable" or r.outcome.got, table(report)


@pytest.mark.parametrize("os_name", OSES)
@pytest.mark.parametrize("name", ALL_LABS)
def test_local_starter_fails_with_a_reason_per_failed_check(name, os_name, tmp_path):
    report = run(tmp_path, name, starter=True, os_name=os_name)
    assert_fails_with_reasons(report)
    assert {r.exercise for r in report.results} == {ex.id for ex in load_lab(name).exercises}


@pytest.mark.parametrize("os_name", OSES)
@pytest.mark.parametrize("name", ALL_LABS)
def test_local_reference_gets_full_marks(name, os_name, tmp_path):
    """OS profiles are fair: every reference passes every exercise, under every profile
    where that exercise runs (selectors' fd_limit is unavailable under windows, where
    select() takes at most 512 sockets: labs/lab-3/lab.yaml says so, with the reason)."""
    report = run(tmp_path, name, starter=False, os_name=os_name,
                 submission=reference_submission(tmp_path, name))
    assert_full_marks(report)
    # a lesson (`expect: fail`) passes by failing, and is worth nothing
    lessons = {(ex.id, c.title) for ex in load_lab(name).exercises
               for c in ex.checks if c.expect == "fail"}
    for r in report.results:
        if (r.exercise, r.title) in lessons:
            assert "fails by design" in r.outcome.figure and not r.required, table(report)
            assert r.max_score == 0
    assert name not in ("lab-1", "lab-2", "lab-3") or lessons


@pytest.mark.docker
def test_docker_lab3_starter_fails_with_reasons(docker_engine, tmp_path):
    report = run(tmp_path, "lab-3", starter=True, mode="docker")
    assert_fails_with_reasons(report)
    failed = {(r.exercise, r.check) for r in report.results if r.outcome.status == "failed"}
    assert {("select", "line.split"), ("select", "robust.eof")} <= failed, table(report)
    assert leftovers_of(report.run_id) == []
