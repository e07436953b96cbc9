"""What a run leaves behind: results.json in Gradescope's schema, junit.xml whose
counts match, report.html with load charts (offline), the terminal's progress,
and errors (a crashing check, a crashing grader, a server that never starts)
reported as errors with a reason, never as a pass."""

from __future__ import annotations

import io
import json
import signal
from pathlib import Path
from xml.etree import ElementTree as ET

import jsonschema
import pytest
from conftest import LAB_X, REPO, lab_variant, quiet, write_lab

import grader.cli
import grader.runner
from grader import charts
from grader.checks import REGISTRY, Stage, check
from grader.labspec import load_lab
from grader.load.stats import read_stats
from grader.outcome import CheckResult, Outcome
from grader.progress import Tick, terminal_progress, ticking
from grader.report import RunReport, new_run_id, read_run
from grader.results import gradescope, html_report, junit, write_all
from grader.runner import grade
from grader.targets import LocalTarget

SCHEMA = json.loads((Path(__file__).parent / "gradescope_results.schema.json").read_text())
HEADER = ("Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,"
          "99%,99.9%,99.99%,100%,Total Request Count,Total Failure Count,"
          "Total Median Response Time,Total Average Response Time,Total Min Response Time,"
          "Total Max Response Time,Total Average Content Size")


def validate(data: dict) -> None:
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)


def locust_files(folder: Path, rps: int, p95: int, failures: int = 0) -> Path:
    """Locust-shaped CSVs for a 4 s run; returns the prefix read_stats takes."""
    folder.mkdir(parents=True)
    rows, total, failed = [HEADER], 0, 0
    rows.append("1000,0,,Aggregated,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0,0,0,0")
    for second in range(1, 5):
        total, failed = total + rps, failed + failures
        rows.append(f"{1000 + second},20,LINE,1024 B line,{rps},0,0,0,0,0,0,{p95},0,0,0,0,0,"
                    f"{total},{failed},0,0,0,0,1030")
        rows.append(f"{1000 + second},20,,Aggregated,{rps},{failures},1,1,1,1,2,{p95},3,4,5,5,"
                    f"9,{total},{failed},0,0,0,0,1030")
    (folder / "stats_stats_history.csv").write_text("\n".join(rows) + "\n")
    (folder / "stats_stats.csv").write_text(
        "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,"
        "Min Response Time,Max Response Time,Average Content Size,Requests/s,Failures/s,"
        "50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%\n"
        f",Aggregated,{total},{failed},1,1,0,9,1030,{rps},{failures},1,1,1,1,2,{p95},3,4,5,5,9\n")
    return folder / "stats"


@pytest.fixture
def synthetic(tmp_path) -> RunReport:
    """A report with one check of every status and a load phase on both sides."""
    lab = load_lab("lab-3")
    report = RunReport(lab, "20260101-000000-0001-abcd", tmp_path / "run", "local", "linux")
    report.folder.mkdir()
    outcomes = [
        ("line.basic", Outcome(True, figure="4/4 replies")),
        ("line.split", Outcome(False, figure="0 of 3 replies right", expected="b'3 abc\\n'",
                               got="b'1 a\\n'", hint="keep an input buffer")),
        ("robust.eof", Outcome.error("the check itself crashed: ValueError: x")),
        ("load.throughput", Outcome(True, figure="2,000 correct replies/s with 20 users")),
    ]
    report.results = [CheckResult("select", name, name, 2.0, o, seconds=0.5)
                      for name, o in outcomes]
    report.results.append(CheckResult("epoll", "line.basic", "a line", 1.0,
                                      Outcome.unavailable("epoll is Linux-only"), required=False))
    (report.folder / "select" / "locust").mkdir(parents=True)
    (report.folder / "select" / "locust" / "report.html").write_text("<html></html>")
    report.load["select"] = {
        "submission": read_stats(locust_files(tmp_path / "sub", rps=2000, p95=7)),
        "reference": read_stats(locust_files(tmp_path / "ref", rps=3000, p95=3)),
    }
    report.logs["select"] = "listening\n"
    report.seconds = 12.3
    return report


def test_results_json_follows_gradescopes_schema(synthetic):
    data = gradescope(synthetic)
    validate(data)
    by_check = {t["extra_data"]["check"] + "@" + t["extra_data"]["exercise"]: t
                for t in data["tests"]}
    assert by_check["robust.eof@select"]["status"] == "failed"  # an error is never a pass
    assert by_check["robust.eof@select"]["output"].startswith("ERROR")
    assert by_check["line.split@select"]["status"] == "failed"
    assert "expected b'3 abc\\n'" in by_check["line.split@select"]["output"]
    assert "status" not in by_check["line.basic@epoll"]  # not run: neither green nor red
    assert by_check["line.basic@epoll"]["max_score"] == 0
    assert data["score"] == 4.0 and [t["number"] for t in data["tests"]][:2] == ["1.1", "1.2"]
    assert data["extra_data"]["load"]["select"]["reference"]["p95_ms"] == 3
    # Gradescope's leaderboard: the submission's correct replies/s (more is better) and
    # its p99 latency (less is better), never the reference's
    mine = synthetic.load["select"]["submission"]
    assert data["leaderboard"] == [
        {"name": "select: correct replies/s", "value": round(mine.ok_rps, 1), "order": "desc"},
        {"name": "select: p99 latency ms", "value": mine.p99_ms, "order": "asc"}]


def test_the_schema_rejects_what_gradescope_would():
    good = {"score": 1, "tests": [{"name": "a", "score": 1, "max_score": 1, "status": "passed"}]}
    validate(good)
    for bad in ({"tests": [{"name": "no score anywhere"}]},
                {"score": 1, "tests": [{"score": 0, "status": "error"}]},
                {"score": 1, "visibility": "sometimes"},
                {"score": 1, "tests": [{"score": 1, "colour": "red"}]}):
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)


def test_junit_counts_match_the_results(synthetic):
    root = ET.fromstring(junit(synthetic))
    statuses = [r.outcome.status for r in synthetic.results]
    assert root.tag == "testsuites"
    assert int(root.get("tests")) == len(statuses) == len(root.findall(".//testcase"))
    for attr, status, tag in (("failures", "failed", "failure"), ("errors", "error", "error"),
                              ("skipped", "unavailable", "skipped")):
        assert int(root.get(attr)) == statuses.count(status) == len(root.findall(f".//{tag}"))
    suites = root.findall("testsuite")
    assert sum(int(s.get("tests")) for s in suites) == len(statuses)


def test_charts_use_the_growth_of_the_request_count(tmp_path):
    stats = read_stats(locust_files(tmp_path / "x", rps=1500, p95=4))
    line = charts.timeline(stats.history)
    assert line["rps"][0] == (0.0, 0.0) and {v for _, v in line["rps"][1:]} == {1500.0}
    assert {v for _, v in line["p95"]} == {4.0} and line["p95"][0][0] == 1.0


def test_report_html_has_charts_links_and_no_network(synthetic):
    write_all(synthetic)
    page = (synthetic.folder / "report.html").read_text()
    assert page.count("<svg") == 2 and page.count("<polyline") >= 4
    assert "threshold" in page and "reference" in page
    assert "href='select/locust/report.html'" in page  # Locust's own report, linked
    assert "select-reference/locust/report.html" not in page  # not written: not linked
    assert "<script" not in page and "src=" not in page and "@import" not in page
    assert "ERROR" in page and "could not reach a verdict" in page
    assert "keep an input buffer" in page


def test_terminal_progress_counts_on_a_tty_and_thins_out_in_a_log():
    class Tty(io.StringIO):
        def isatty(self):
            return True

    log, tty = io.StringIO(), Tty()
    for out in (terminal_progress(log, log_every=3600), terminal_progress(tty)):
        out("[select] load: 20 users for 5 s")
        out(Tick("[select] load: 1/5 s"))
        out(Tick("[select] load: 2/5 s"))
        out("[select] measuring the reference")
    assert log.getvalue().splitlines() == ["[select] load: 20 users for 5 s",
                                           "[select] measuring the reference"]
    assert "\r\033[K[select] load: 2/5 s" in tty.getvalue()
    seen = []
    with ticking(seen.append, "[x] load", total=0.2, every=0.05):
        import time

        time.sleep(0.35)
    assert seen and all(isinstance(m, Tick) for m in seen)
    assert any("/0.2 s" in m for m in seen) and "waiting for Locust" in seen[-1]


def test_run_ids_are_unique_within_one_second():
    ids = {new_run_id() for _ in range(200)}
    assert len(ids) > 190  # a 16-bit random suffix: collisions are rare, not impossible


# --- errors are errors, with a reason: never a pass --------------------------------------

CRASH_LAB = LAB_X + "      - {check: test.crash, points: 2}\n"


@pytest.fixture
def crashing_check():
    @check("test.crash", Stage.NETWORK, "a check whose code is broken")
    def crash(ctx):
        return 1 / 0

    yield
    REGISTRY.pop("test.crash", None)


def test_a_crash_inside_a_check_is_an_error_and_exit_1(crashing_check, tmp_path, monkeypatch):
    write_lab(tmp_path / "labs", "lab-x", CRASH_LAB)
    monkeypatch.setattr(grader.cli, "load_lab", lambda name: load_lab(name, tmp_path / "labs"))
    previous = signal.getsignal(signal.SIGTERM)
    try:
        code = grader.cli.main(["lab-x", "--mode", "local", "--results", str(tmp_path / "out"),
                                "--submission", str(REPO / "servers" / "select_server.py")])
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 1
    (results,) = (tmp_path / "out" / "lab-x").glob("*/results.json")
    data = json.loads(results.read_text())
    validate(data)
    crash = next(t for t in data["tests"] if t["extra_data"]["check"] == "test.crash")
    assert crash["status"] == "failed" and crash["score"] == 0
    assert crash["extra_data"]["status"] == "error"
    assert "crashed" in crash["output"] and "ZeroDivisionError" in crash["output"]
    basic = next(t for t in data["tests"] if t["extra_data"]["check"] == "line.basic")
    assert basic["status"] == "passed"


@pytest.fixture(scope="module")
def short_lab(tmp_path_factory):
    """lab-3's select exercise alone, with a 2 s load phase."""
    return lab_variant(tmp_path_factory.mktemp("short"), "lab-3", ["select"])


@pytest.mark.slow
def test_a_grader_crash_outside_any_check_is_an_error(short_lab, tmp_path, monkeypatch):
    def broken_load_phase(self, load):
        raise RuntimeError("the load generator fell over")

    monkeypatch.setattr(LocalTarget, "load_phase", broken_load_phase)
    report = grade(short_lab, REPO / "servers" / "select_server.py", "local", "linux", tmp_path,
                   progress=quiet)
    assert not report.passed
    statuses = {r.check: r.outcome.status for r in report.results}
    assert set(statuses.values()) == {"error"}, statuses
    assert all("the grader crashed: RuntimeError" in r.outcome.got for r in report.results)
    validate(gradescope(report))


def test_a_server_that_never_listens_is_an_error(short_lab, tmp_path, monkeypatch):
    monkeypatch.setattr(grader.runner, "WAIT_FOR_SERVER", 2.0)
    report = grade(short_lab, REPO / "tests" / "broken" / "never_listens.py", "local", "linux",
                   tmp_path, progress=quiet)
    assert not report.passed
    assert {r.outcome.status for r in report.results} == {"error"}
    network = next(r for r in report.results if r.check == "line.basic")
    assert "never accepted a connection" in network.outcome.got
    load = next(r for r in report.results if r.check == "load.throughput")
    assert "never listened" in load.outcome.got


@pytest.mark.slow
def test_a_real_run_writes_valid_results(short_lab, tmp_path):
    report = grade(short_lab, REPO / "servers" / "select_server.py", "local", "linux", tmp_path,
                   progress=quiet)
    write_all(report)
    data = json.loads((report.folder / "results.json").read_text())
    validate(data)
    root = ET.parse(report.folder / "junit.xml").getroot()
    assert int(root.get("tests")) == len(data["tests"]) == len(root.findall(".//testcase"))
    failed = sum(t.get("status") == "failed" for t in data["tests"])
    assert int(root.get("failures")) + int(root.get("errors")) == failed
    assert set(report.load["select"]) == {"submission", "reference"}
    assert report.load["select"]["reference"] is not None
    page = html_report(report)
    assert page.count("<svg") == 2 and "Locust report (submission)" in page
    header, results = read_run(report.folder)  # what batch grading reads back
    assert [r.to_dict() for r in results] == [r.to_dict() for r in report.results]
    assert header["verdict"] == "passed" and header["score"] == report.summary.score


def test_totals_come_from_locusts_final_json_not_the_lagging_csv(tmp_path):
    """The CSVs are rewritten once a second and miss the run's last second (for a
    2 s run on a busy machine, all of it: "0 replies"); the JSON is complete."""
    prefix = locust_files(tmp_path / "x", rps=100, p95=4)
    entry = {"name": "1024 B line", "method": "LINE", "start_time": 1000.0,
             "last_request_timestamp": 1004.0, "num_requests": 1000, "num_failures": 10,
             "response_times": {"0": 600, "1": 300, "7": 80, "40": 20},
             "num_reqs_per_sec": {"1000": 250, "1001": 250, "1002": 250, "1003": 250},
             "num_fail_per_sec": {"1003": 10}}
    Path(f"{prefix}.json").write_text(json.dumps([entry]))
    stats = read_stats(prefix)
    assert (stats.requests, stats.failures, stats.rps) == (1000, 10, 250.0)
    assert (stats.p50_ms, stats.p95_ms, stats.p99_ms) == (0, 7, 40)
    ok, failed, origin = charts.rates(stats)
    assert origin == 1000.0 and ok[1] == (0.5, 250.0) and failed[-1] == (3.5, 10.0)
    assert "per_second" not in stats.to_dict()
