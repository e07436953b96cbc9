"""The scheduler of `make test` (tests/longest_first.py): every test once, the longest
unit first, a module sharing a wide fixture kept whole and in order."""

from longest_first import DEFAULT_SECONDS, longest_first, shares_a_wide_fixture, unit_of


def test_a_module_with_a_module_or_session_fixture_is_one_unit():
    assert shares_a_wide_fixture("tests/test_platforms.py")  # scope="session"
    assert shares_a_wide_fixture("tests/test_handout.py")  # scope="module"
    assert not shares_a_wide_fixture("tests/test_labs.py")  # function-scoped only
    assert unit_of("tests/test_handout.py::test_x[a]") == "tests/test_handout.py"
    assert unit_of("tests/test_labs.py::test_x[a]") == "tests/test_labs.py::test_x[a]"


def test_every_test_is_sent_once_the_longest_unit_first():
    collection = ["tests/test_labs.py::quick", "tests/test_handout.py::a",
                  "tests/test_labs.py::long", "tests/test_handout.py::b",
                  "tests/test_labs.py::unknown"]
    seconds = {"tests/test_labs.py::quick": 1.0, "tests/test_labs.py::long": 30.0,
               "tests/test_handout.py::a": 10.0, "tests/test_handout.py::b": 10.0}
    order = [collection[i] for i in longest_first(collection, seconds)]
    assert order == ["tests/test_labs.py::long", "tests/test_handout.py::a",  # 30, 20
                     "tests/test_handout.py::b", "tests/test_labs.py::quick",  # 1
                     "tests/test_labs.py::unknown"]  # DEFAULT_SECONDS
    assert DEFAULT_SECONDS < 1.0
