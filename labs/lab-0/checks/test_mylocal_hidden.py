"""lab-0's instructor-only test (lab.yaml: visibility: after_due_date): the student
handout leaves this file out; the instructor's grading runs it and the platform
shows its result after the due date.

Every failure message reads "expected X, got Y" so the report can say it.
"""

import threading

import mylocal


def test_a_new_thread_starts_empty_while_old_thread_objects_are_kept():
    """A server that keeps its Thread objects (to join them later) keeps their idents
    out of reach of weakref.finalize: glibc reuses the ident of a thread that ended,
    so a dict keyed by get_ident() hands the old thread's values to the new one."""
    loc = mylocal.MyLocal()
    kept = []
    for i in range(50):
        seen: list = []
        for work in (lambda i=i: setattr(loc, "secret", i),
                     lambda seen=seen: seen.append(getattr(loc, "secret", None))):
            t = threading.Thread(target=work)
            t.start()
            t.join(10)
            kept.append(t)
        assert seen == [None], (f"expected a new thread to see no attributes while the old "
                                f"Thread objects are kept, got secret={seen[0]!r} left by a "
                                f"finished thread (its ident was reused)")
