"""lab-0's tests: the grader runs them against your mylocal.py (module.pytest). The
instructor's grading also runs test_mylocal_hidden.py, which the handout leaves out.

Every failure message reads "expected X, got Y" so the report can say it.
"""

import asyncio
import gc
import threading
import weakref

import mylocal


def run_in_thread(fn) -> None:
    t = threading.Thread(target=fn)
    t.start()
    t.join(10)


def test_one_thread_get_set_del():
    loc = mylocal.MyLocal()
    other = mylocal.MyLocal()
    loc.name = "明哥"
    got = getattr(loc, "name", None)
    assert got == "明哥", f"expected loc.name == '明哥' after setting it, got {got!r}"
    seen = getattr(other, "name", None)
    assert seen is None, f"expected a second MyLocal to have no 'name', got {seen!r}"
    del loc.name
    assert not hasattr(loc, "name"), "expected 'name' gone after del loc.name, got it still set"
    try:
        del loc.name
    except AttributeError:
        pass
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"expected AttributeError deleting a name never set, "
                             f"got {type(exc).__name__}") from None
    else:
        raise AssertionError("expected AttributeError deleting a name never set, got nothing")


def test_threads_are_isolated():
    loc = mylocal.MyLocal()
    count = 32
    barrier = threading.Barrier(count)
    wrong: list[str] = []

    def work(i: int) -> None:
        loc.age = i
        loc.name = f"thread-{i}"
        barrier.wait(10)  # all threads have written before any reads
        if (loc.age, loc.name) != (i, f"thread-{i}"):
            wrong.append(f"thread {i} read age={loc.age!r} name={loc.name!r}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert not wrong, (f"expected each of {count} threads to read back its own values, "
                       f"got {len(wrong)} that did not, first: {wrong[0]}")
    seen = getattr(loc, "age", None)
    assert seen is None, f"expected the main thread to see no 'age', got {seen!r}"


class Payload:
    """Something weakref can watch."""


def test_a_finished_threads_values_are_freed():
    loc = mylocal.MyLocal()
    refs = []

    def work() -> None:
        payload = Payload()
        loc.payload = payload
        refs.append(weakref.ref(payload))

    for _ in range(5):
        run_in_thread(work)
    gc.collect()
    alive = sum(ref() is not None for ref in refs)
    assert alive == 0, (f"expected the values of finished threads to be freed, "
                        f"got {alive} of {len(refs)} still alive inside MyLocal")


def test_a_new_thread_starts_empty():
    loc = mylocal.MyLocal()
    for i in range(50):
        seen = []
        run_in_thread(lambda i=i: setattr(loc, "secret", i))
        run_in_thread(lambda seen=seen: seen.append(getattr(loc, "secret", None)))
        assert seen == [None], (f"expected a new thread to see no attributes, got "
                                f"secret={seen[0]!r} left by a finished thread")


async def _serve(count: int) -> list:
    return await asyncio.gather(*(mylocal.handle(f"req-{i}") for i in range(count)))


def test_asyncio_tasks_keep_their_own_request_id():
    count = 20
    got = asyncio.run(_serve(count))
    wrong = [(i, rid) for i, rid in enumerate(got) if rid != f"req-{i}"]
    assert not wrong, (f"expected each of {count} tasks to return its own request id, "
                       f"got {len(wrong)} wrong, first: task {wrong[0][0]} returned "
                       f"{wrong[0][1]!r}")
    outside = mylocal.current_request_id()
    assert outside is None, (f"expected no request id outside any task, got {outside!r}")
