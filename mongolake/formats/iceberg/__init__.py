"""Apache Iceberg table format (v2): metadata JSON in the filesystem ("Hadoop")
catalog layout, Avro manifests and manifest lists, Parquet data files with field ids
and column metrics, copy-on-write updates, time travel, snapshot expiry, vacuum,
change-data files, and optional registration in a SQLite SQL catalog.

Importing this package registers the format: ``get_format("iceberg")``.
"""
from mongolake.formats.base import register_format

from .sqlcatalog import SqlCatalog
from .table import IcebergFormat, IcebergTable

register_format(IcebergFormat())

__all__ = ["IcebergFormat", "IcebergTable", "SqlCatalog"]
