"""Pipeline stages, one module per family; importing the package registers them all."""
from mongolake.query.aggregate.stages import (  # noqa: F401  (imported for their registrations)
    basic, bucket, fill, geo, group, join, misc, output, project, search, sort, window,
)
