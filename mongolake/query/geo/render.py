"""BSON values printed the way MongoDB prints them in geo error messages
(``BSONElement::toString``): ``{ type: "Point", coordinates: [ 200, 0 ] }``.

One rendering for the whole query layer: these are the ``docpath`` helpers
(``fmt_value``/``fmt_elem``) and the aggregation language's ``type_name``, plus
the C++ stream form of a double that some geo messages use.
"""
from __future__ import annotations

import math

from mongolake.query.docpath import fmt_elem as show_elem, fmt_value as show  # noqa: F401
from mongolake.query.expr.values import type_name  # noqa: F401


def fmt_double(x: float) -> str:
    """A double as C++ streams print it (6 significant digits)."""
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:g}"
