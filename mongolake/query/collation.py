"""Collations: ``parse_collation`` and a small, ICU-like string ordering.

MongoDB compares strings with ICU when a collation is given. MongoLake has no ICU;
:class:`Collation` approximates the root (language-neutral) ICU ordering, the same
for every locale:

* primary level: base letters, case- and accent-insensitive, letters ordered
  alphabetically (``a < B < c``); white space < punctuation/symbols < digits < letters;
* secondary level: accents (``e < é``);
* tertiary level: case (lower before upper unless ``caseFirst: "upper"``);
* ``strength`` 1/2/3 select how many levels count (4 and 5 behave as 3);
  ``caseLevel`` adds the case level to strengths 1 and 2;
* ``numericOrdering`` compares runs of digits by their numeric value;
* ``alternate: "shifted"`` ignores spaces and punctuation (``maxVariable: "space"``
  ignores spaces only).

:meth:`Collation.key` maps a string to a *key string* whose plain code-point order
(Python's ``<``) is the collation order, and whose equality is collation equality.
So any code that compares with :func:`mongolake.query.bsonorder.compare` can honour
a collation by comparing ``collation.transform(value)`` instead of ``value``
(:meth:`Collation.transform` replaces every string inside a value by its key; field
names are never collated). ``locale: "simple"`` means binary comparison: it parses
to ``None``, and every helper here accepts ``None`` for "no collation".
"""
from __future__ import annotations

import unicodedata
from typing import Any

from mongolake.errors import ErrorCode, MongoError
from mongolake.query import bsonorder

_FIELDS = {
    "locale": str, "caseLevel": bool, "caseFirst": str, "strength": int, "numericOrdering": bool,
    "alternate": str, "maxVariable": str, "normalization": bool, "backwards": bool, "version": str,
}
_DEFAULTS = {
    "caseLevel": False, "caseFirst": "off", "strength": 3, "numericOrdering": False,
    "alternate": "non-ignorable", "maxVariable": "punct", "normalization": False, "backwards": False,
}

# class marks of primary units: they sort white space < punctuation < digits < letters
_WS, _PUNCT, _DIGIT, _LETTER = "\x01", "\x02", "\x03", "\x04"


class Collation:
    """A parsed, non-simple collation (see the module docstring)."""

    __slots__ = ("spec", "locale", "strength", "case_level", "case_first", "numeric", "shifted",
                 "max_variable", "backwards", "_cache")

    def __init__(self, spec: dict):
        self.locale = spec["locale"]
        self.strength = int(spec.get("strength", 3))
        self.case_level = bool(spec.get("caseLevel", False))
        self.case_first = spec.get("caseFirst", "off")
        self.numeric = bool(spec.get("numericOrdering", False))
        self.shifted = spec.get("alternate", "non-ignorable") == "shifted"
        self.max_variable = spec.get("maxVariable", "punct")
        self.backwards = bool(spec.get("backwards", False))
        full = {"locale": self.locale}
        for k, d in _DEFAULTS.items():
            full[k] = spec.get(k, d)
        full["version"] = "57.1"
        self.spec = full
        self._cache: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"Collation({self.spec!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Collation) and other.spec == self.spec

    def __hash__(self) -> int:
        return hash(tuple(sorted((k, str(v)) for k, v in self.spec.items())))

    # -- keys -------------------------------------------------------------------------------
    def key(self, s: str) -> str:
        """The sort key of ``s``: compare keys with ``<``/``==`` to compare under this collation."""
        k = self._cache.get(s)
        if k is None:
            k = self._make_key(s)
            if len(self._cache) < 50_000:
                self._cache[s] = k
        return k

    def _units(self, s: str) -> list[tuple[str, str, str, str]]:
        """(class, primary char(s), accents, case) per collation element of ``s``."""
        units = []
        chars = unicodedata.normalize("NFD", s)
        i, n = 0, len(chars)
        while i < n:
            c = chars[i]
            cat = unicodedata.category(c)
            if cat.startswith("M"):  # a combining mark: accent of the previous unit
                if units:
                    cls, prim, acc, case = units[-1]
                    units[-1] = (cls, prim, acc + c, case)
                i += 1
                continue
            if cat == "Cc" or cat == "Cf":  # controls/format characters are ignorable
                i += 1
                continue
            if c.isdigit() and self.numeric:
                j = i
                while j < n and chars[j].isdigit():
                    j += 1
                digits = "".join(str(unicodedata.digit(d, 0)) for d in chars[i:j]).lstrip("0") or "0"
                units.append((_DIGIT, chr(0x100 + len(digits)) + digits, "", ""))
                i = j
                continue
            if c.isspace() or cat.startswith("Z"):
                units.append((_WS, c, "", ""))
            elif cat.startswith("P") or cat.startswith("S"):
                units.append((_PUNCT, c, "", ""))
            elif c.isdigit():
                units.append((_DIGIT, str(unicodedata.digit(c, 0)) if unicodedata.digit(c, None) is not None
                              else c, "", ""))
            else:
                low = c.casefold()
                upper = c != low and c.lower() != c
                units.append((_LETTER, low, "", "U" if upper else "L"))
            i += 1
        if self.shifted:
            drop = {_WS} if self.max_variable == "space" else {_WS, _PUNCT}
            units = [u for u in units if u[0] not in drop]
        return units

    def _make_key(self, s: str) -> str:
        units = self._units(s)
        levels = ["".join(cls + prim for cls, prim, _, _ in units)]
        if self.strength >= 2:
            acc = ["".join(a + "\x01" for _, _, a, _ in units)]
            if self.backwards:
                acc = ["".join(a + "\x01" for _, _, a, _ in reversed(units))]
            levels += acc
        upper_first = self.case_first == "upper"

        def case_mark(c: str) -> str:
            if c == "U":
                return "\x01" if upper_first else "\x02"
            return "\x02" if upper_first else "\x01"

        if self.case_level or self.strength >= 3:
            levels.append("".join(case_mark(c) for _, _, _, c in units))
        if self.strength >= 4:
            levels.append(s)  # identical level: break remaining ties by code points
        return "\x00".join(levels)

    # -- values -----------------------------------------------------------------------------
    def transform(self, v: Any) -> Any:
        """``v`` with every string (also inside documents and arrays) replaced by its key."""
        if isinstance(v, str):
            return self.key(v)
        if isinstance(v, dict):
            return {k: self.transform(x) for k, x in v.items()}
        if isinstance(v, list):
            return [self.transform(x) for x in v]
        return v

    def compare(self, a: Any, b: Any) -> int:
        """-1/0/1 by BSON order, strings compared under this collation."""
        return bsonorder.compare(self.transform(a), self.transform(b))

    def equal(self, a: Any, b: Any) -> bool:
        """Equality as ``$eq`` with this collation sees it."""
        return bsonorder.values_equal(self.transform(a), self.transform(b))


def compare(a: Any, b: Any, collation: Collation | None = None) -> int:
    """BSON-order comparison honouring an optional collation."""
    if collation is None:
        return bsonorder.compare(a, b)
    return collation.compare(a, b)


def values_equal(a: Any, b: Any, collation: Collation | None = None) -> bool:
    if collation is None:
        return bsonorder.values_equal(a, b)
    return collation.equal(a, b)


def transform(v: Any, collation: Collation | None) -> Any:
    """``collation.transform(v)``, or ``v`` itself for the simple collation."""
    return v if collation is None else collation.transform(v)


def _type_error(field: str, v: Any, expected: str) -> MongoError:
    from mongolake.query.docpath import type_name

    return MongoError(ErrorCode.TypeMismatch,
                      f"BSON field 'Collation.{field}' is the wrong type '{type_name(v)}', "
                      f"expected type '{expected}'")


def parse_collation(spec: Any) -> Collation | None:
    """Validate a collation document; ``None`` for no collation or ``locale: "simple"``.

    Errors follow mongod: a non-document -> TypeMismatch, unknown field -> 40415,
    missing ``locale`` -> 40414, bad enum values / ranges -> BadValue.
    """
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise MongoError(ErrorCode.TypeMismatch, "collation must be an object")
    for k, v in spec.items():
        if k not in _FIELDS:
            raise MongoError(40415, f"BSON field 'Collation.{k}' is an unknown field.")
        want = _FIELDS[k]
        if want is bool and not isinstance(v, bool):
            raise _type_error(k, v, "bool")
        if want is str and not isinstance(v, str):
            raise _type_error(k, v, "string")
        if want is int:
            if isinstance(v, bool) or not isinstance(v, (int, float)) or float(v) != int(v):
                raise _type_error(k, v, "int")
    if "locale" not in spec:
        raise MongoError(40414, "BSON field 'Collation.locale' is missing but a required field")
    locale = spec["locale"]
    if locale == "simple":
        extra = [k for k in spec if k not in ("locale", "version")]
        if extra:
            raise MongoError(ErrorCode.BadValue,
                             f"Collation with locale 'simple' may not specify other fields: {extra[0]}")
        return None
    if not locale or not all(ch.isalnum() or ch in "_-@=;" for ch in locale):
        raise MongoError(ErrorCode.BadValue, f"Field 'locale' is invalid in: {{ locale: \"{locale}\" }}")
    strength = int(spec.get("strength", 3))
    if strength not in (1, 2, 3, 4, 5):
        raise MongoError(ErrorCode.BadValue,
                         f"Enumeration value '{strength}' for field 'strength' is not a valid value.")
    for field, allowed in (("caseFirst", ("upper", "lower", "off")),
                           ("alternate", ("non-ignorable", "shifted")),
                           ("maxVariable", ("punct", "space"))):
        if field in spec and spec[field] not in allowed:
            raise MongoError(ErrorCode.BadValue,
                             f"Enumeration value '{spec[field]}' for field '{field}' is not a valid value.")
    if spec.get("caseFirst", "off") != "off" and strength == 1 and not spec.get("caseLevel", False):
        # ICU accepts this; mongod too (caseFirst simply has no effect at strength 1)
        pass
    return Collation(spec)
