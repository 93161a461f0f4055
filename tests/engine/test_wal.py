"""The WAL's group commit: writes made on an event loop are fsynced by one callback on
that loop per iteration; other threads' writes (and every write once fsyncs are slow)
by the sync thread; every waiter is released exactly when its record is durable."""
import asyncio
import threading

from mongolake.engine import wal as walmod
from mongolake.engine.wal import WriteAheadLog


def open_wal(tmp_path) -> WriteAheadLog:
    w = WriteAheadLog(str(tmp_path / "wal"), sync="always")
    list(w.replay())
    w.open()
    return w


async def _writers(w: WriteAheadLog, tasks: int, per: int) -> list[int]:
    loop = asyncio.get_running_loop()
    done: list[int] = []

    async def one(k: int) -> None:
        for i in range(per):
            seq = w.append(b"x%d-%d" % (k, i))
            fut = w.durable_future(seq, loop)
            if fut is not None:
                await fut
            assert w.synced_seq >= seq
            done.append(seq)

    await asyncio.gather(*(one(k) for k in range(tasks)))
    return done


def test_loop_writers_share_fsyncs_on_the_loop(tmp_path):
    w = open_wal(tmp_path)
    try:
        w.append(b"first")                      # before any loop: the sync thread's job
        w.wait_durable(1)
        done = asyncio.run(_writers(w, 16, 20))
        assert sorted(done) == list(range(2, 2 + 320))
        assert w.loop_fsyncs > 0
        assert w.fsyncs < 320 / 2, "concurrent writers share fsyncs"
    finally:
        w.close()
    w2 = WriteAheadLog(str(tmp_path / "wal"))
    assert [p for _s, p in w2.replay()][:2] == [b"first", b"x0-0"]
    assert w2.last_seq == 321


def test_other_threads_and_slow_fsyncs_use_the_sync_thread(tmp_path):
    w = open_wal(tmp_path)
    try:
        asyncio.run(_writers(w, 2, 5))           # registers the loop
        before = w.loop_fsyncs
        seqs = []

        def writer():
            for i in range(20):
                s = w.append(b"t%d" % i)
                w.wait_durable(s, timeout=10)
                seqs.append(s)

        th = [threading.Thread(target=writer) for _ in range(4)]
        [t.start() for t in th]
        [t.join() for t in th]
        assert len(seqs) == 80 and w.synced_seq >= max(seqs)
        w.fsync_avg = walmod.LOOP_FSYNC_MAX * 10       # a slow disk: keep fsyncs off the loop
        done = asyncio.run(_writers(w, 4, 5))
        assert len(done) == 20 and w.synced_seq >= max(done)
        assert w.loop_fsyncs == before
    finally:
        w.close()


def test_a_new_loop_on_the_same_thread_takes_over(tmp_path):
    w = open_wal(tmp_path)
    try:
        for _ in range(3):                        # each asyncio.run is a new loop; the old one is closed
            done = asyncio.run(_writers(w, 3, 3))
            assert len(done) == 9
        seq = w.append(b"after the loops")        # no running loop: the sync thread
        w.wait_durable(seq, timeout=10)
        assert w.synced_seq == seq
    finally:
        w.close()
