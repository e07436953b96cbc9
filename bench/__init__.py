"""`make bench`: every reference server side by side on this machine (see run.py)."""
