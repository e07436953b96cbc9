"""The load phase: a Locust TCP user for LINE/1 and the statistics it leaves.

The locustfile is the only code Locust runs; everything it is told comes from
LOCUST_* and IOLAB_* environment variables (see locust.conf), and everything
the grader learns comes back through Locust's own output files (--csv,
--json-file), never its stdout.
"""
