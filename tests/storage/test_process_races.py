"""Conditional writes raced by separate *processes* (spawn): exactly one winner per round,
on the filesystem and on S3 (moto)."""
from __future__ import annotations

import multiprocessing as mp
import queue

import pytest

from mongolake.storage import open_storage
from tests.s3util import s3_options
from tests.storage import race_worker

WORKERS = 3
ROUNDS = 25


def _race(url: str, options: dict) -> list[tuple[int, list, str | None]]:
    storage = open_storage(url, **options)
    storage.write("shared", b"initial")
    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [ctx.Process(target=race_worker.run, args=(url, options, i, ROUNDS, barrier, results))
             for i in range(WORKERS)]
    for p in procs:
        p.start()
    out = []
    try:
        for _ in procs:
            out.append(results.get(timeout=120))
    except queue.Empty:
        pytest.fail("a race worker did not report back")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
    errors = [e for _w, _wins, e in out if e]
    assert not errors, errors
    return out


def _check(url: str, options: dict, out) -> None:
    storage = open_storage(url, **options)
    absent: dict[int, int] = {}
    match: dict[int, int] = {}
    for worker, wins, _ in out:
        for kind, r in wins:
            target = absent if kind == "absent" else match
            assert r not in target, f"two winners of {kind} round {r}"
            target[r] = worker
    assert sorted(absent) == list(range(ROUNDS)), "a put-if-absent round had no winner"
    assert sorted(match) == list(range(ROUNDS)), "an if-match round had no winner"
    for r, w in absent.items():
        assert storage.read(f"absent/{r:03d}") == f"{w}:{r}".encode()
    last = ROUNDS - 1
    assert storage.read("shared") == f"{match[last]}:{last}".encode()
    # more than one worker won something: the race was real, not serialised by accident
    assert len(set(absent.values()) | set(match.values())) > 1


def test_filesystem_process_race(tmp_path):
    url = str(tmp_path / "root")
    out = _race(url, {})
    _check(url, {}, out)


def test_s3_process_race(s3_server, s3_url):
    options = s3_options(s3_server[0], base_delay=0.01, max_attempts=4)
    out = _race(s3_url, options)
    _check(s3_url, options, out)
