"""The bounded regex engine answers like ``re`` (the query engine's reference) while
refusing catastrophic backtracking."""
import re

import pytest

from mongolake.query.regex import compile_regex
from mongolake.query.saferegex import SIMPLE_MAX_LEN, BoundedPattern, is_simple

PATTERNS = [("^(a|b)+c", ""), (r"(?<word>\w+)\s+\k<word>", ""), (r"^\d{3}-\d+-(\d+)$", ""),
            (r"(?i)hello.*world.*!", ""), ("^abc$", "m"), ("a.c.*x", "s"), ("ab c # comment\n d", "x"),
            (r"[[:alpha:]]+[[:digit:]]+", ""), (r"(?=.*\d)(?=.*[a-z]).{8,}", ""), (r"é+ü*(ß|ss)", "i"),
            (r"(\w+)@(\w+)\.com", ""), (r"\bfoo\b.*\bbar\b", ""), (r"^(?:x|y)*z", ""), (r"\Qa.b\E+", "")]
SUBJECTS = ["abababc", "hello hello world", "123-45-678", "HeLLo big wide World !", "x\nabc\ny",
            "a\nc---x", "abcd", "abc123", "passw0rdxyz", "ÉÉÜss", "me@example.com", "foo and bar",
            "xyxyz", "a.ba.b"]


@pytest.mark.parametrize("pattern,options", PATTERNS)
def test_same_answers_as_re_on_both_engines(pattern, options):
    rx = compile_regex(pattern, options)
    assert isinstance(rx, BoundedPattern)
    reference = re.compile(rx.pattern, rx.flags)
    for s in SUBJECTS:
        for subject in (s, "~" * (SIMPLE_MAX_LEN + 1) + s):     # short: re when simple; long: bounded engine
            got, want = rx.search(subject), reference.search(subject)
            assert (got is None) == (want is None), (pattern, subject[-40:])
            if want is not None:
                assert got.span() == want.span() and got.groups() == want.groups(), (pattern, subject[-40:])
        assert [m.span() for m in rx.finditer(s * 3)] == [m.span() for m in reference.finditer(s * 3)]


@pytest.mark.parametrize("pattern,simple", [("abc", True), ("^a.*b$", True), ("[a-z]+@x", True),
                                            ("x{2,5}y", True), ("(ab)+", True), ("a.*b.*c", False),
                                            ("^(a+)+$", False), ("(a|aa)*b", False), (r"(\w+\s?)*$", False),
                                            (r"(a)\1", False), ("x{1,100}y{1,100}", False)])
def test_simple_pattern_classification(pattern, simple):
    assert is_simple(pattern) is simple
