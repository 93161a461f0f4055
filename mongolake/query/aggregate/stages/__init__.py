"""Pipeline stages, one module per family; importing the package registers them all."""
from mongolake.query.aggregate.stages import (  # noqa: F401  (imported for their registrations)
    basic, bucket, fill, group, join, misc, output, project, sort, window,
)
