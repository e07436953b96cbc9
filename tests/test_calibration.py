"""Calibrate once per machine (grader/calibration.py): the policy, the cache, the yardstick.

- which calibration an exercise gets: the reference when lab.yaml names one, else the
  echo yardstick (a handout), or what `load: {calibration: ...}` says;
- the yardstick cannot be handed in: it fails the LINE/1 battery;
- verdicts of the load checks agree, judged against the yardstick or the reference, on
  a correct server and on servers broken where load shows it (local mode; docker once);
- a cached calibration is reused (the second run starts no calibration load phase: its
  run.json says so and no calibration folder exists) and measured again when stale or
  with IOLAB_CALIBRATION=fresh.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from conftest import BROKEN, REPO, SERVERS, quiet, write_lab

from grader import calibration
from grader.errors import UsageError
from grader.report import RUN_FILE
from grader.runner import grade
from grader.stage import run_network_stage

LOAD_CHECKS = ["load.failures", "load.throughput", "load.latency"]
# A select server that takes 5 ms per reply: correct replies, 200 a second at most,
# far under a quarter of the reference's (slow, not blocking: only the relative
# thresholds catch it).
SLOW = """\
import runpy, time
import lineproto
_feed = lineproto.LineBuffer.feed
def feed(self, data):
    out = _feed(self, data)
    time.sleep(0.005 * out.count(b"\\n"))
    return out
lineproto.LineBuffer.feed = feed
runpy.run_path("select_server.py", run_name="__main__")
"""


def load_lab_yaml(labs: Path, calibration_source: str | None, reference: bool = True,
                  duration: float = 2):
    """lab-c: lab-3's select exercise with only its load checks (quick to grade)."""
    load = {"users": 20, "spawn_rate": 20, "duration": duration, "line_size": 1024,
            "thresholds": {"max_failure_ratio": 0.0, "min_rps_ratio": 0.25,
                           "max_p95_ratio": 5}}
    if calibration_source:
        load["calibration"] = calibration_source
    exercise = {"id": "select", "title": "t", "model": "select",
                "checks": [{"check": c, "points": 1} for c in LOAD_CHECKS], "load": load}
    if reference:
        exercise["reference"] = "servers/select_server.py"
    return write_lab(labs, "lab-c", {"lab": "lab-c", "title": "t", "exercises": [exercise]})


def submissions(tmp: Path) -> dict[str, Path]:
    slow = tmp / "slow"
    slow.mkdir()
    for name in ("select_server.py", "lineproto.py"):
        (slow / name).write_bytes((SERVERS / name).read_bytes())
    (slow / "server.py").write_text(SLOW)
    return {"correct": SERVERS / "select_server.py",
            "iterative_blocks": BROKEN / "iterative_blocks.py", "slow": slow / "server.py"}


def run_json(report) -> dict:
    return json.loads((report.folder / RUN_FILE).read_text())


def graded(lab, submission: Path, results: Path, mode: str = "local"):
    from grader.results import write_all
    report = grade(lab, submission, mode, "linux", results, progress=quiet)
    write_all(report)
    return report


def verdicts(report) -> dict[str, str]:
    return {r.check: r.outcome.status.value for r in report.results}


# --- policy (no server) --------------------------------------------------------------

def test_policy_reference_when_named_else_yardstick(tmp_path):
    assert calibration.source_of(load_lab_yaml(tmp_path, None).exercises[0]) == "reference"
    handout = load_lab_yaml(tmp_path, None, reference=False).exercises[0]
    assert calibration.source_of(handout) == "yardstick"
    chosen = load_lab_yaml(tmp_path, "yardstick").exercises[0]
    assert calibration.source_of(chosen) == "yardstick"
    assert calibration.server_of(chosen, "yardstick")[1] == "echo_server.py"


def test_lab_yaml_calibration_key_is_validated(tmp_path):
    with pytest.raises(UsageError, match=r"line \d+: load.calibration must be one of"):
        load_lab_yaml(tmp_path, "bogus")
    with pytest.raises(UsageError, match="needs the exercise's reference"):
        load_lab_yaml(tmp_path, "reference", reference=False)


def test_stale_when_old_moved_or_asked(monkeypatch):
    from grader.load.stats import LoadStats
    stats = LoadStats(requests=100, failures=0, rps=50.0, p50_us=1, p95_us=2, p99_us=3)
    cal = calibration.Calibration("reference", "s.py", stats, time.time() - 60, 4.0)
    monkeypatch.delenv(calibration.FRESH_ENV, raising=False)
    monkeypatch.setattr(calibration, "LOAD_FLOOR", 2.0)  # two cores, as here
    assert calibration.stale(cal, 4.5) == ""
    assert "moved from 4.0 to 7.0" in calibration.stale(cal, 7.0)
    assert "moved" in calibration.stale(cal, 2.0)
    cal.load_average = 1.2
    assert calibration.stale(cal, 0.2) == ""  # an idle machine either way: under 2 counts as 2
    cal.load_average = 0.5  # seen here: our own runs moved it to 1.6, both under the cores
    assert calibration.stale(cal, 1.6) == ""
    assert "moved from 0.5 to 3.5" in calibration.stale(cal, 3.5)
    assert calibration.stale(None, 1.0) == "none measured on this machine yet"
    cal.measured_at = time.time() - 11 * 60
    assert "11 min old" in calibration.stale(cal, 4.0)
    cal.measured_at = time.time()
    monkeypatch.setenv(calibration.FRESH_ENV, "fresh")
    assert calibration.stale(cal, 4.0) == "IOLAB_CALIBRATION=fresh"


# --- the yardstick ---------------------------------------------------------------------

def test_yardstick_fails_line1(start_server):
    addr = start_server(calibration.YARDSTICK)
    checks = ["line.basic", "line.split", "line.pipelined"]
    result = run_network_stage(addr, [{"check": c} for c in checks], 10.0)
    assert result["listening"]
    assert [o["status"] for o in result["outcomes"]] == ["failed"] * 3, result["outcomes"]


# --- agreement and the cache (local mode, one grading of each) -------------------------

@pytest.fixture(scope="module")
def agreement(tmp_path_factory):
    """Each server graded against the reference and against the yardstick, each source
    with a cache of its own (its first grading measures, later ones reuse); the correct
    server twice against the reference (the second reuses the first's calibration)."""
    tmp = tmp_path_factory.mktemp("agreement")
    servers = submissions(tmp)
    out = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(calibration.FRESH_ENV, raising=False)
        # The suite's own load moves the load average past LOAD_SWING within a minute
        # (3.4 -> 5.8 in a CI-settings run, five workers), and a cached calibration is
        # then measured again: that rule has its unit test (test_stale_when_old_moved_
        # or_asked). Here the reuse and the re-measure on a failure are under test.
        mp.setattr(calibration, "LOAD_SWING", float("inf"))
        for source in ("reference", "yardstick"):
            mp.setenv(calibration.CACHE_ENV, str(tmp / f"cache-{source}"))
            lab = load_lab_yaml(tmp / source, source)
            for name, path in servers.items():
                # iterative_blocks serves one user, the others wait for a reply: with
                # the default 5 s reply timeout and a short load phase none of them
                # fails (a weakness of the load checks, not of the calibration); 1 s
                # makes them fail. Only for it: a slow reply of another is no failure.
                mp.setenv("IOLAB_REPLY_TIMEOUT", "1" if name == "iterative_blocks" else "5")
                out[source, name] = graded(lab, path, tmp / "results")
            if source == "reference":
                out[source, "correct again"] = graded(lab, servers["correct"], tmp / "results")
    return out


@pytest.mark.parametrize("server", ["correct", "slow"])
@pytest.mark.slow  # local load phases (about a minute in all)
def test_yardstick_and_reference_verdicts_agree(agreement, server):
    by_reference = verdicts(agreement["reference", server])
    by_yardstick = verdicts(agreement["yardstick", server])
    figures = {s: [r.outcome.figure for r in agreement[s, server].results]
               for s in ("reference", "yardstick")}
    assert by_reference == by_yardstick, figures
    expected = "passed" if server == "correct" else "failed"
    assert {by_yardstick["load.throughput"], by_yardstick["load.latency"]} == {expected}, figures


@pytest.mark.slow  # local load phases (about a minute in all)
def test_blocking_server_fails_under_load_either_way(agreement):
    for source in ("reference", "yardstick"):
        report = agreement[source, "iterative_blocks"]
        assert verdicts(report)["load.failures"] == "failed", [
            r.outcome.figure for r in report.results]


@pytest.mark.slow  # local load phases (about a minute in all)
def test_yardstick_side_is_reported(agreement):
    report = agreement["yardstick", "correct"]
    assert set(report.load["select"]) == {"submission", "calibration"}
    assert report.load["select"]["calibration"].failures == 0  # echo mode: every reply right
    data = json.loads((report.folder / "results.json").read_text())
    assert data["extra_data"]["calibrations"]["select"]["source"] == "yardstick"
    page = (report.folder / "report.html").read_text()
    assert "judged against the yardstick" in page


@pytest.mark.slow  # local load phases (about a minute in all)
def test_second_run_reuses_the_calibration(agreement):
    first, again = agreement["reference", "correct"], agreement["reference", "correct again"]
    assert run_json(first)["calibrations"]["select"]["reused"] is False
    assert (first.folder / "select-reference" / "locust").is_dir()
    cal = run_json(again)["calibrations"]["select"]
    assert cal["reused"] is True, cal
    assert not (again.folder / "select-reference").exists()  # no calibration load phase
    assert verdicts(again) == {c: "passed" for c in LOAD_CHECKS}


@pytest.mark.slow  # local load phases (about a minute in all)
def test_failure_is_judged_against_a_calibration_measured_now(agreement):
    # the slow server fails against the cached one, so it is measured again, beside it
    for source, label in (("reference", "select-reference"),
                          ("yardstick", "select-calibration")):
        report = agreement[source, "slow"]
        cal = run_json(report)["calibrations"]["select"]
        assert cal["reused"] is False and "failed against the cached" in cal["why"], cal
        assert (report.folder / label / "locust").is_dir()


@pytest.mark.slow  # local load phases (about a minute in all)
def test_cached_calibration_is_refreshed_when_asked_or_stale(tmp_path, monkeypatch):
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv(calibration.FRESH_ENV, "fresh")  # a batch's first grading
    lab = load_lab_yaml(tmp_path, "yardstick", duration=1)
    correct = SERVERS / "select_server.py"
    fresh = graded(lab, correct, tmp_path / "results")
    assert run_json(fresh)["calibrations"]["select"]["reused"] is False
    assert (fresh.folder / "select-calibration" / "locust").is_dir()
    # stale: the cached one is an hour old
    monkeypatch.delenv(calibration.FRESH_ENV)
    [cached] = (tmp_path / "cache" / "calibration").glob("*.json")
    data = json.loads(cached.read_text())
    cached.write_text(json.dumps(dict(data, measured_at=data["measured_at"] - 3600)))
    old = graded(lab, correct, tmp_path / "results")
    cal = run_json(old)["calibrations"]["select"]
    assert cal["reused"] is False and "min old" in cal["why"], cal
    assert json.loads(cached.read_text())["measured_at"] > data["measured_at"]  # rewritten


@pytest.mark.docker
def test_yardstick_in_docker_agrees(docker_engine, tmp_path, monkeypatch):
    """The echo mode reaches Locust's workers in the stack (compose.yaml), and the
    yardstick runs in the exercise's sandbox: a correct server passes against it."""
    monkeypatch.setenv(calibration.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(calibration.FRESH_ENV, raising=False)
    lab = load_lab_yaml(tmp_path, "yardstick")
    report = graded(lab, SERVERS / "select_server.py", tmp_path / "results", mode="docker")
    side = report.load["select"]["calibration"]
    assert side.requests > 0 and side.failures == 0, side
    assert verdicts(report) == {c: "passed" for c in LOAD_CHECKS}, [
        r.outcome.figure for r in report.results]
    assert REPO.joinpath("grader", "yardstick", "echo_server.py").is_file()


def test_whole_durations_reach_locust_without_decimals():
    """lab.yaml `duration: 5.0` (or a float from a test) must not become Locust's
    --run-time "5.0s", which it cannot parse (docker mode: no statistics at all)."""
    from grader.targets.base import Target
    assert Target.load_env(None, {"duration": 5.0})["IOLAB_DURATION"] == "5"
    assert Target.load_env(None, {"duration": 2})["IOLAB_DURATION"] == "2"
