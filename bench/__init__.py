"""MongoLake's benchmark suite (``python -m bench``; see bench/run.py and docs/performance.md).

Modules: ``run`` (command line and orchestration), ``workloads`` (the pymongo client
code), ``dataset`` (the documents), ``servers`` (MongoLake and the floor as child
processes), ``floor_server`` (the minimal wire server), ``peers`` (NX-27017) and
``report`` (table, JSON, targets).  The ``bench_*.py`` scripts are separate
micro-benchmarks of single layers.
"""
