"""Concurrent writer *processes* on one Iceberg table (filesystem and S3 via moto):
every commit lands exactly once, sequence numbers are contiguous, nothing is
overwritten, and a remove that lost the race raises CommitConflictError."""
from __future__ import annotations

import json
import multiprocessing as mp
import threading

from mongolake.formats.base import get_format
from mongolake.storage import open_storage
from tests.s3util import s3_options

from .conftest import SCHEMA, make_batch

WORKERS = 2


def _writer(url: str, options: dict, root: str, worker: int, commits: int, barrier, results) -> None:
    """Child process: ``commits`` small appends, as fast as possible."""
    try:
        storage = open_storage(url, **options)
        table = get_format("iceberg").open_table(storage, root)
        barrier.wait(timeout=60)
        done = []
        for i in range(commits):
            f = table.write_data_file(make_batch(worker * 10_000 + i, 1), stats_columns=["_key"])
            v = table.commit(adds=[f], app_id=f"w{worker}", app_version=i, info={"worker": worker, "i": i})
            done.append((v, f.path))
        results.put((worker, done, table.lost_races, None))
    except BaseException as e:   # report instead of hanging the parent
        barrier.abort()
        results.put((worker, [], 0, repr(e)))


def _remover(url: str, options: dict, root: str, worker: int, path: str, read_version: int, barrier,
             results) -> None:
    """Child process: remove ``path`` based on ``read_version``; report the outcome."""
    from mongolake.formats.base import CommitConflictError

    try:
        storage = open_storage(url, **options)
        table = get_format("iceberg").open_table(storage, root)
        victim = next(f for f in table.snapshot(read_version).files if f.path == path)
        barrier.wait(timeout=60)
        try:
            v = table.commit(removes=[victim], read_version=read_version, operation="DELETE")
            results.put((worker, v, None))
        except CommitConflictError as e:
            results.put((worker, None, f"conflict: {e}"))
    except BaseException as e:
        barrier.abort()
        results.put((worker, None, repr(e)))


def _run(target, args_per_worker) -> list:
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(args_per_worker))
    results = ctx.Queue()
    procs = [ctx.Process(target=target, args=(*args, barrier, results)) for args in args_per_worker]
    for p in procs:
        p.start()
    out = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    return out


def _check_concurrent_appends(url: str, options: dict, commits: int) -> None:
    storage = open_storage(url, **options)
    ice = get_format("iceberg")
    table = ice.create_table(storage, "db/coll", SCHEMA)
    out = _run(_writer, [(url, options, "db/coll", w, commits) for w in range(WORKERS)])
    assert [err for *_, err in out] == [None] * WORKERS
    landed = {v: (w, path) for w, done, _, _ in out for v, path in done}
    assert sum(lost for _, _, lost, _ in out) > 0             # the writers really raced
    total = WORKERS * commits
    assert len(landed) == total                               # no sequence number was handed out twice
    assert sorted(landed) == list(range(1, total + 1))        # contiguous
    md = json.loads(storage.read(f"db/coll/metadata/v{total + 1}.metadata.json"))
    assert md["last-sequence-number"] == total and len(md["snapshots"]) == total
    by_seq = {s["sequence-number"]: s for s in md["snapshots"]}
    parents = [by_seq[v].get("parent-snapshot-id") for v in range(2, total + 1)]
    assert parents == [by_seq[v]["snapshot-id"] for v in range(1, total)]      # one linear history
    snap = table.snapshot()
    assert snap.version == total and len(snap.files) == total and snap.num_records == total
    assert {f.path for f in snap.files} == {p for _, p in landed.values()}      # nothing overwritten
    for v, (w, path) in landed.items():                       # each snapshot added its own writer's file
        summary = by_seq[v]["summary"]
        assert json.loads(summary["mongolake.info"])["worker"] == str(w)
        assert [f.path for f in table.snapshot(v).files if f.path not in
                {g.path for g in table.snapshot(v - 1).files}] == [path]
    assert snap.app_versions == {f"w{w}": commits - 1 for w in range(WORKERS)}
    for w, done, _, _ in out:                                 # each worker's commits are in its own order
        assert [v for v, _ in done] == sorted(v for v, _ in done)

    # a remove race: both processes remove the same file from the same read version
    victim = snap.files[0]
    out = _run(_remover, [(url, options, "db/coll", w, victim.path, snap.version) for w in range(WORKERS)])
    winners = [v for _, v, _ in out if v is not None]
    conflicts = [err for _, v, err in out if v is None]
    assert winners == [total + 1] and len(conflicts) == WORKERS - 1
    assert all(err.startswith("conflict:") and "removed" in err for err in conflicts)
    final = ice.open_table(storage, "db/coll").snapshot()
    assert final.version == total + 1 and victim.path not in {f.path for f in final.files}
    assert len(final.files) == total - 1


def test_two_processes_on_filesystem(tmp_path):
    _check_concurrent_appends(str(tmp_path / "store"), {"fsync": False}, commits=25)


def test_two_processes_on_s3(s3_server, s3_url):
    _check_concurrent_appends(s3_url, s3_options(s3_server[0]), commits=10)


def test_threads_of_one_handle_serialise(storage):
    """Several threads committing through one handle (and one through another handle)."""
    threads = 4
    ice = get_format("iceberg")
    t = ice.create_table(storage, "t", SCHEMA)
    other = ice.open_table(storage, "t")
    versions: list[int] = []
    lock = threading.Lock()

    def work(h, k):
        for i in range(5):
            v = h.commit(adds=[h.write_data_file(make_batch(k * 100 + i, 1))])
            with lock:
                versions.append(v)

    ts = [threading.Thread(target=work, args=(t if k else other, k)) for k in range(threads)]
    for th in ts:
        th.start()
    for th in ts:
        th.join()
    assert sorted(versions) == list(range(1, threads * 5 + 1))
    assert len(t.snapshot().files) == threads * 5 == len(other.snapshot().files)
