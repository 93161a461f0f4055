"""``$jsonSchema`` (draft 4 subset + ``bsonType``), compiled into a validator.

Supported keywords, with MongoDB's semantics (a keyword constrains only values
of the kind it is about: ``minimum`` passes non-numbers, ``properties`` passes
non-objects, ...): ``bsonType``, ``type`` (no ``integer``, as in MongoDB),
``enum``, ``allOf``, ``anyOf``, ``oneOf``, ``not``, ``minimum``, ``maximum``,
``exclusiveMinimum``, ``exclusiveMaximum``, ``multipleOf``, ``minLength``,
``maxLength``, ``pattern``, ``properties``, ``required``,
``additionalProperties``, ``patternProperties``, ``minProperties``,
``maxProperties``, ``dependencies``, ``items``, ``additionalItems``,
``minItems``, ``maxItems``, ``uniqueItems``, ``title``, ``description``.
Unsupported standard keywords (``$ref``, ``format``, ...) and unknown ones raise
FailedToParse like MongoDB.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from mongolake.errors import ErrorCode, MongoError
from mongolake.query.bsonorder import (
    MISSING, NUMBER_TYPE_CODES, TYPE_ALIASES, compare, is_nan, is_number, to_number, type_code,
    values_equal,
)
from mongolake.query.regex import compile_regex

__all__ = ["compile_schema"]

Validator = Callable[[Any], bool]

_UNSUPPORTED = {"$ref", "$schema", "default", "definitions", "format", "id"}
_JSON_TYPES = {
    "object": frozenset({3}), "array": frozenset({4}), "number": NUMBER_TYPE_CODES,
    "boolean": frozenset({8}), "string": frozenset({2}), "null": frozenset({10}),
}


def _fail(msg: str, code: int = ErrorCode.FailedToParse) -> MongoError:
    return MongoError(code, msg)


def compile_schema(schema: Mapping[str, Any]) -> Validator:
    """Validator for a whole document (the top level of the schema)."""
    return _compile(schema)


def _types(key: str, spec: Any) -> frozenset:
    items = spec if isinstance(spec, list) else [spec]
    codes: set[int] = set()
    for t in items:
        if not isinstance(t, str):
            raise _fail(f"$jsonSchema keyword '{key}' must be a string or an array of strings",
                        ErrorCode.TypeMismatch)
        if key == "type":
            if t == "integer":
                raise _fail("$jsonSchema type 'integer' is not currently supported.")
            if t not in _JSON_TYPES:
                raise _fail(f"Unknown type name alias: {t}", ErrorCode.BadValue)
            codes |= _JSON_TYPES[t]
        elif t == "number":
            codes |= NUMBER_TYPE_CODES
        elif t in TYPE_ALIASES:
            codes.add(TYPE_ALIASES[t])
        else:
            raise _fail(f"Unknown type name alias: {t}", ErrorCode.BadValue)
    if not codes:
        raise _fail(f"$jsonSchema keyword '{key}' must name at least one type")
    return frozenset(codes)


def _number(key: str, v: Any) -> Any:
    if not is_number(v):
        raise _fail(f"$jsonSchema keyword '{key}' must be a number", ErrorCode.TypeMismatch)
    return v


def _count(key: str, v: Any) -> int:
    if not is_number(v) or is_nan(v) or to_number(v) != int(to_number(v)) or to_number(v) < 0:
        raise _fail(f"$jsonSchema keyword '{key}' must be a representable as a non-negative integer",
                    ErrorCode.TypeMismatch)
    return int(to_number(v))


def _schema_list(key: str, v: Any) -> list[Validator]:
    if not isinstance(v, list) or not v:
        raise _fail(f"$jsonSchema keyword '{key}' must be a nonempty array", ErrorCode.TypeMismatch)
    return [_compile(s) for s in v]


def _compile(schema: Any) -> Validator:
    if not isinstance(schema, Mapping):
        raise _fail("$jsonSchema keyword must be an object", ErrorCode.TypeMismatch)
    if "type" in schema and "bsonType" in schema:
        raise _fail("Cannot specify both $jsonSchema keywords 'type' and 'bsonType'")
    checks: list[Validator] = []
    for key, spec in schema.items():
        if key in _UNSUPPORTED:
            raise _fail(f"$jsonSchema keyword '{key}' is not currently supported")
        builder = _KEYWORDS.get(key)
        if builder is None:
            raise _fail(f"Unknown $jsonSchema keyword: {key}")
        check = builder(key, spec, schema)
        if check is not None:
            checks.append(check)
    return lambda v: all(c(v) for c in checks)


# -- keyword builders (each returns a check on one value, or None) ---------------

def _k_type(key: str, spec: Any, schema: Mapping) -> Validator:
    codes = _types(key, spec)
    return lambda v: type_code(v) in codes


def _k_enum(key: str, spec: Any, schema: Mapping) -> Validator:
    if not isinstance(spec, list) or not spec:
        raise _fail("$jsonSchema keyword 'enum' must be a nonempty array", ErrorCode.TypeMismatch)
    return lambda v: any(values_equal(v, e) for e in spec)


def _k_bound(key: str, spec: Any, schema: Mapping) -> Validator:
    bound = _number(key, spec)
    lower = key == "minimum"
    exclusive = schema.get("exclusiveMinimum" if lower else "exclusiveMaximum") is True

    def check(v: Any) -> bool:
        if not is_number(v):
            return True
        if is_nan(v):
            return False
        c = compare(v, bound)
        if lower:
            return c > 0 or (c == 0 and not exclusive)
        return c < 0 or (c == 0 and not exclusive)
    return check


def _k_exclusive(key: str, spec: Any, schema: Mapping) -> None:
    if not isinstance(spec, bool):
        raise _fail(f"$jsonSchema keyword '{key}' must be a boolean", ErrorCode.TypeMismatch)
    partner = "minimum" if key == "exclusiveMinimum" else "maximum"
    if partner not in schema:
        raise _fail(f"$jsonSchema keyword '{partner}' must be a present if {key} is present")
    return None


def _k_multiple(key: str, spec: Any, schema: Mapping) -> Validator:
    d = to_number(_number(key, spec))
    if d <= 0:
        raise _fail("$jsonSchema keyword 'multipleOf' must have a positive value")
    import decimal
    dd = decimal.Decimal(d) if not isinstance(d, decimal.Decimal) else d

    def check(v: Any) -> bool:
        if not is_number(v):
            return True
        x = to_number(v)
        if isinstance(x, float) and (x != x or x in (float("inf"), float("-inf"))):
            return False
        xd = decimal.Decimal(x) if not isinstance(x, decimal.Decimal) else x
        if not xd.is_finite():
            return False
        return (xd % dd) == 0
    return check


def _k_length(key: str, spec: Any, schema: Mapping) -> Validator:
    n = _count(key, spec)
    if key == "minLength":
        return lambda v: type(v) is not str or len(v) >= n
    return lambda v: type(v) is not str or len(v) <= n


def _k_pattern(key: str, spec: Any, schema: Mapping) -> Validator:
    if not isinstance(spec, str):
        raise _fail("$jsonSchema keyword 'pattern' must be a string", ErrorCode.TypeMismatch)
    rx = compile_regex(spec)
    return lambda v: type(v) is not str or rx.search(v) is not None


def _k_properties(key: str, spec: Any, schema: Mapping) -> Validator:
    if not isinstance(spec, Mapping):
        raise _fail("$jsonSchema keyword 'properties' must be an object", ErrorCode.TypeMismatch)
    props = {name: _compile(s) for name, s in spec.items()}

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for name, val in props.items():
            x = v.get(name, MISSING)
            if x is not MISSING and not val(x):
                return False
        return True
    return check


def _k_required(key: str, spec: Any, schema: Mapping) -> Validator:
    if not isinstance(spec, list) or not spec or not all(isinstance(s, str) for s in spec):
        raise _fail("$jsonSchema keyword 'required' must be a nonempty array of strings",
                    ErrorCode.TypeMismatch if not isinstance(spec, list) else ErrorCode.FailedToParse)
    names = list(spec)
    return lambda v: not isinstance(v, dict) or all(n in v for n in names)


def _k_additional_props(key: str, spec: Any, schema: Mapping) -> Validator:
    known = set(schema.get("properties") or {})
    patterns = [compile_regex(p) for p in (schema.get("patternProperties") or {})]
    if isinstance(spec, bool):
        sub = None if spec else (lambda x: False)
    elif isinstance(spec, Mapping):
        sub = _compile(spec)
    else:
        raise _fail("$jsonSchema keyword 'additionalProperties' must be either an object or a boolean",
                    ErrorCode.TypeMismatch)
    if sub is None:
        return lambda v: True

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for name, x in v.items():
            if name in known or any(p.search(name) for p in patterns):
                continue
            if not sub(x):
                return False
        return True
    return check


def _k_pattern_props(key: str, spec: Any, schema: Mapping) -> Validator:
    if not isinstance(spec, Mapping):
        raise _fail("$jsonSchema keyword 'patternProperties' must be an object", ErrorCode.TypeMismatch)
    pats = [(compile_regex(p), _compile(s)) for p, s in spec.items()]

    def check(v: Any) -> bool:
        if not isinstance(v, dict):
            return True
        for name, x in v.items():
            for rx, sub in pats:
                if rx.search(name) and not sub(x):
                    return False
        return True
    return check


def _k_num_props(key: str, spec: Any, schema: Mapping) -> Validator:
    n = _count(key, spec)
    if key == "minProperties":
        return lambda v: not isinstance(v, dict) or len(v) >= n
    return lambda v: not isinstance(v, dict) or len(v) <= n


def _k_dependencies(key: str, spec: Any, schema: Mapping) -> Validator:
    if not isinstance(spec, Mapping):
        raise _fail("$jsonSchema keyword 'dependencies' must be an object", ErrorCode.TypeMismatch)
    deps: list[tuple[str, Validator]] = []
    for name, d in spec.items():
        if isinstance(d, list):
            names = list(d)
            deps.append((name, lambda v, names=names: all(n in v for n in names)))
        else:
            deps.append((name, _compile(d)))
    return lambda v: not isinstance(v, dict) or all(name not in v or f(v) for name, f in deps)


def _k_items(key: str, spec: Any, schema: Mapping) -> Validator:
    if isinstance(spec, Mapping):
        sub = _compile(spec)
        return lambda v: type(v) is not list or all(sub(x) for x in v)
    if isinstance(spec, list):
        subs = [_compile(s) for s in spec]
        extra = schema.get("additionalItems", True)
        extra_fn = (lambda x: bool(extra)) if isinstance(extra, bool) else _compile(extra)

        def check(v: Any) -> bool:
            if type(v) is not list:
                return True
            for i, x in enumerate(v):
                if i < len(subs):
                    if not subs[i](x):
                        return False
                elif not extra_fn(x):
                    return False
            return True
        return check
    raise _fail("$jsonSchema keyword 'items' must be an array or an object", ErrorCode.TypeMismatch)


def _k_additional_items(key: str, spec: Any, schema: Mapping) -> None:
    if not isinstance(spec, (bool, Mapping)):
        raise _fail("$jsonSchema keyword 'additionalItems' must be either an object or a boolean",
                    ErrorCode.TypeMismatch)
    return None                                            # handled by 'items'


def _k_num_items(key: str, spec: Any, schema: Mapping) -> Validator:
    n = _count(key, spec)
    if key == "minItems":
        return lambda v: type(v) is not list or len(v) >= n
    return lambda v: type(v) is not list or len(v) <= n


def _k_unique(key: str, spec: Any, schema: Mapping) -> Validator | None:
    if not isinstance(spec, bool):
        raise _fail("$jsonSchema keyword 'uniqueItems' must be a boolean", ErrorCode.TypeMismatch)
    if not spec:
        return None

    def check(v: Any) -> bool:
        if type(v) is not list:
            return True
        for i in range(len(v)):
            for j in range(i):
                if values_equal(v[i], v[j]):
                    return False
        return True
    return check


def _k_all_of(key: str, spec: Any, schema: Mapping) -> Validator:
    subs = _schema_list(key, spec)
    return lambda v: all(s(v) for s in subs)


def _k_any_of(key: str, spec: Any, schema: Mapping) -> Validator:
    subs = _schema_list(key, spec)
    return lambda v: any(s(v) for s in subs)


def _k_one_of(key: str, spec: Any, schema: Mapping) -> Validator:
    subs = _schema_list(key, spec)
    return lambda v: sum(1 for s in subs if s(v)) == 1


def _k_not(key: str, spec: Any, schema: Mapping) -> Validator:
    sub = _compile(spec)
    return lambda v: not sub(v)


def _k_annotation(key: str, spec: Any, schema: Mapping) -> None:
    if not isinstance(spec, str):
        raise _fail(f"$jsonSchema keyword '{key}' must be a string", ErrorCode.TypeMismatch)
    return None


_KEYWORDS: dict[str, Callable[[str, Any, Mapping], Validator | None]] = {
    "bsonType": _k_type, "type": _k_type, "enum": _k_enum,
    "minimum": _k_bound, "maximum": _k_bound,
    "exclusiveMinimum": _k_exclusive, "exclusiveMaximum": _k_exclusive, "multipleOf": _k_multiple,
    "minLength": _k_length, "maxLength": _k_length, "pattern": _k_pattern,
    "properties": _k_properties, "required": _k_required, "additionalProperties": _k_additional_props,
    "patternProperties": _k_pattern_props, "minProperties": _k_num_props, "maxProperties": _k_num_props,
    "dependencies": _k_dependencies, "items": _k_items, "additionalItems": _k_additional_items,
    "minItems": _k_num_items, "maxItems": _k_num_items, "uniqueItems": _k_unique,
    "allOf": _k_all_of, "anyOf": _k_any_of, "oneOf": _k_one_of, "not": _k_not,
    "title": _k_annotation, "description": _k_annotation,
}
