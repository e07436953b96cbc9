"""The two ways a grading run can go wrong before any check has a verdict.

UsageError: the user's input is wrong (missing folder, broken lab.yaml, no
engine, port in use). The CLI prints its message on one line and exits 2.

StackError: the machinery failed (an image is missing, compose failed). The run
is reported as an error, never as a pass.
"""


class UsageError(Exception):
    """Bad input: one line saying what is wrong and what to do; exit code 2."""


class StackError(Exception):
    """The grading machinery failed; the run is an error, not a verdict."""
