"""Local mode's load phase: Locust through its library API, no master/worker.

Run as `python -m grader.load.local PREFIX`, or main(PREFIX) in a fork of the warm
process (grader/load/warm.py): a process of its own either way, because Locust
monkey-patches the standard library with gevent on import. It writes
the same files as the Compose stack's master: PREFIX_stats.csv,
PREFIX_stats_history.csv, PREFIX_failures.csv, PREFIX.json, PREFIX_latency.json
(reply times in µs, grader/load/latency.py) and report.html.
Configuration comes from the same LOCUST_* / IOLAB_* variables.
"""

import os
import sys

import gevent
from locust import stats
from locust.env import Environment
from locust.html import get_html_report

from grader.load import latency
from grader.load.locustfile import LineUser


def main(prefix: str) -> int:
    # gevent's loop reads the clock when it runs: in a fork of the warm process it
    # last ran there, maybe minutes ago, and the timers below would count from then
    gevent.get_hub().loop.update_now()
    users = int(os.environ.get("IOLAB_USERS", "20"))
    spawn_rate = float(os.environ.get("IOLAB_SPAWN_RATE", str(users)))
    duration = float(os.environ.get("IOLAB_DURATION", "5"))
    env = Environment(user_classes=[LineUser], host=os.environ["LOCUST_HOST"],
                      stop_timeout=2)
    runner = env.create_local_runner()
    env.events.request.add_listener(latency.on_request)  # µs, as the stack's workers keep
    writer = stats.StatsCSVFileWriter(env, stats.PERCENTILES_TO_REPORT, prefix, full_history=True)
    gevent.spawn(writer.stats_writer)
    gevent.spawn(stats.stats_history, runner)
    # The phase lasts `duration` once every user runs (spawning takes a second or more on
    # a loaded machine): a user a server never serves has then waited that long at the
    # stop, well past the locustfile's STALL, and is counted (NeverServed).
    env.events.spawning_complete.add_listener(
        lambda **_: gevent.spawn_later(duration, runner.quit))
    gevent.spawn_later(duration + 30, runner.quit)  # should spawning never complete
    runner.start(users, spawn_rate=spawn_rate)
    runner.greenlet.join()
    stats.save_stats_json(runner.stats, prefix)
    latency.RECORDER.write(prefix + latency.SUFFIX)
    writer.close_files()
    folder = os.path.dirname(prefix)
    with open(os.path.join(folder, "report.html"), "w", encoding="utf-8") as fh:
        fh.write(get_html_report(env, show_download_link=False))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
