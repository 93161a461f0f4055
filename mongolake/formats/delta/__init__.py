"""Delta Lake table format: ``_delta_log`` JSON commits, Parquet checkpoints,
per-file statistics, change data files, time travel and vacuum.

Importing this package registers the format: ``get_format("delta")``.
"""
from mongolake.formats.base import register_format

from .table import DeltaFormat, DeltaTable

register_format(DeltaFormat())

__all__ = ["DeltaFormat", "DeltaTable"]
