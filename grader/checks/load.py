"""Load checks: judge the statistics of the Locust phase.

Thresholds come from lab.yaml. Throughput and latency can be absolute
(`min_rps`, `max_p95_ms`) or relative to the exercise's reference server
measured in the same run on the same machine (`min_rps_ratio`,
`max_p95_ratio`), so a busy machine does not fail a good server.
"""

from __future__ import annotations

from grader.checks import CheckContext, check
from grader.outcome import Outcome


def _no_load(ctx: CheckContext) -> Outcome | None:
    if ctx.load is None:
        return Outcome.error("no load statistics: the load phase did not run")
    if ctx.load.requests == 0:
        return Outcome(False, figure="0 replies", expected="replies under load",
                       got="no request completed during the load phase",
                       hint="is the server accepting connections and answering lines?")
    return None


@check("load.failures", "load", "no failed requests under load")
def failures(ctx: CheckContext) -> Outcome:
    if (missing := _no_load(ctx)) is not None:
        return missing
    limit = float(ctx.param("max_failure_ratio", 0.0))
    stats = ctx.load
    figure = f"{stats.failures} of {stats.requests} failed ({stats.failure_ratio:.2%})"
    if stats.failure_ratio <= limit:
        return Outcome(True, figure=figure)
    return Outcome(False, figure=figure, expected=f"at most {limit:.2%} failed",
                   got=f"{stats.failure_ratio:.2%}",
                   hint="see the failures CSV in the results folder for the first errors")


@check("load.throughput", "load", "throughput under load")
def throughput(ctx: CheckContext) -> Outcome:
    if (missing := _no_load(ctx)) is not None:
        return missing
    rps = ctx.load.ok_rps
    floor, basis = float(ctx.param("min_rps", 0)), f"{ctx.param('min_rps', 0)} replies/s"
    ratio = ctx.param("min_rps_ratio", None)
    if ratio is not None and ctx.reference is not None and ctx.reference.rps > 0:
        floor = max(floor, float(ratio) * ctx.reference.ok_rps)
        basis = f"{float(ratio):.0%} of the reference's {ctx.reference.ok_rps:,.0f} replies/s"
    figure = f"{rps:,.0f} correct replies/s with {ctx.load.users} users"
    if rps >= floor:
        return Outcome(True, figure=figure)
    return Outcome(False, figure=figure, expected=f"at least {floor:,.0f} ({basis})",
                   got=f"{rps:,.0f} replies/s",
                   hint="avoid per-byte work and tiny recv() sizes; reply to every line "
                   "a recv() brought in one send")


@check("load.latency", "load", "latency under load (p95)")
def latency(ctx: CheckContext) -> Outcome:
    if (missing := _no_load(ctx)) is not None:
        return missing
    p95 = ctx.load.p95_ms
    if ctx.load.failure_ratio > 0.1:
        return Outcome(False, figure=f"{ctx.load.failure_ratio:.0%} of requests failed",
                       expected="latency of correct replies",
                       got="too many failures for latency to mean anything",
                       hint="fix the failures first (see load.failures)")
    ceiling = float(ctx.param("max_p95_ms", 1e9))
    basis = f"{ceiling:g} ms"
    ratio = ctx.param("max_p95_ratio", None)
    if ratio is not None and ctx.reference is not None and ctx.reference.p95_ms > 0:
        ceiling = min(ceiling, float(ratio) * max(ctx.reference.p95_ms, 1.0))
        basis = f"{float(ratio):g}× the reference's {ctx.reference.p95_ms:g} ms"
    figure = f"p50 {ctx.load.p50_ms:g} ms, p95 {p95:g} ms, p99 {ctx.load.p99_ms:g} ms"
    if p95 <= ceiling:
        return Outcome(True, figure=figure)
    return Outcome(False, figure=figure, expected=f"p95 ≤ {ceiling:g} ms ({basis})",
                   got=f"p95 {p95:g} ms",
                   hint="a client waits while the server is busy elsewhere: "
                   "never block on one connection")
