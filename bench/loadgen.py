"""`python -m bench.loadgen CFG`: the load generator now lives in grader/load/loadgen.py
(`python -m grader measure` runs it too); this name is kept for bench/run.py and the tests."""

import sys

from grader.load.loadgen import main, measure, percentile  # noqa: F401 - re-exported

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
