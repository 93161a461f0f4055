"""The aggregation expression language, split by operator family.

Importing this package registers every operator in :data:`core.OPERATORS`.
The public entry points are re-exported by :mod:`mongolake.query.expressions`.
"""
from mongolake.query.expr import (  # noqa: F401  (imported for their registrations)
    accexprs, arith, arrays, arrays_hof, convert, core, datefmt, dates, logic, objects, regex, sets, strings,
)
