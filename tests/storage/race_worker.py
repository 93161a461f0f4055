"""Worker process for the cross-process conditional-write races (spawned, so it
imports only the storage package)."""
from __future__ import annotations


def run(url: str, options: dict, worker_id: int, rounds: int, barrier, results) -> None:
    from mongolake.storage import VersionMismatchError, open_storage

    storage = open_storage(url, **options)
    wins: list[tuple[str, int]] = []
    try:
        # put-if-absent: every worker tries to create the same new path
        for r in range(rounds):
            barrier.wait(timeout=60)
            try:
                storage.write_conditional(f"absent/{r:03d}", f"{worker_id}:{r}".encode(), None)
                wins.append(("absent", r))
            except VersionMismatchError:
                pass
        # if-version: every worker read the same version, then tries to replace it
        for r in range(rounds):
            barrier.wait(timeout=60)
            version = storage.stat("shared").version
            barrier.wait(timeout=60)
            try:
                storage.write_conditional("shared", f"{worker_id}:{r}".encode(), version)
                wins.append(("match", r))
            except VersionMismatchError:
                pass
        results.put((worker_id, wins, None))
    except BaseException as e:  # report instead of hanging the parent
        barrier.abort()
        results.put((worker_id, wins, repr(e)))
    finally:
        storage.close()
