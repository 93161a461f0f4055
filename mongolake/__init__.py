"""MongoLake: a MongoDB-wire-compatible server over Delta Lake / Iceberg tables."""

__version__ = "0.1.0"
MONGODB_COMPAT_VERSION = "8.0.4"
