"""Test commands: configureFailPoint / waitForFailPoint and the failCommand and
failGetMoreAfterCursorCheckout fail points, against a real server started with
--enable-test-commands, driven by pymongo (retries, change-stream resumption) and by
raw OP_MSG (exact error labels)."""
import threading
import time

import pytest
from pymongo import MongoClient, monitoring
from pymongo.errors import AutoReconnect, OperationFailure, WriteConcernError

from mongolake import config
from tests.commands.rawmsg import RawMsg, new_lsid, txn
from tests.serverutil import ServerProcess

AWAIT = 200


@pytest.fixture(scope="module")
def fp_server(tmp_path_factory):
    srv = ServerProcess(str(tmp_path_factory.mktemp("fplake")), extra=["--enable-test-commands", "--sync", "none"])
    srv.start()
    yield srv
    srv.stop()


class Listener(monitoring.CommandListener):
    """Every command pymongo sends, with its outcome."""

    def __init__(self):
        self.log = []                                   # (event, command name, command/reply)
        self.lock = threading.Lock()

    def started(self, e):
        with self.lock:
            self.log.append(("started", e.command_name, e.command))

    def succeeded(self, e):
        with self.lock:
            self.log.append(("succeeded", e.command_name, e.reply))

    def failed(self, e):
        with self.lock:
            self.log.append(("failed", e.command_name, e.failure))

    def of(self, name, event="started"):
        with self.lock:
            return [x[2] for x in self.log if x[0] == event and x[1] == name]


@pytest.fixture
def admin(fp_server):
    with MongoClient(fp_server.url, serverSelectionTimeoutMS=10000) as c:
        yield c.admin
        for name in ("failCommand", "failGetMoreAfterCursorCheckout"):
            c.admin.command({"configureFailPoint": name, "mode": "off"})


@pytest.fixture
def coll(fp_server, request):
    with MongoClient(fp_server.url, serverSelectionTimeoutMS=10000) as c:
        name = "".join(ch if ch.isalnum() else "_" for ch in request.node.name)[:40]
        c.fp[name].drop()
        yield c.fp[name]


def fail(admin, mode, **data):
    return admin.command({"configureFailPoint": "failCommand", "mode": mode, "data": data})


def _raw(reply):
    for k in ("$clusterTime", "operationTime"):
        reply.pop(k, None)
    return reply


# -- enabling ---------------------------------------------------------------------------------

def test_without_the_option_the_test_commands_do_not_exist(client):
    for cmd in ({"configureFailPoint": "failCommand", "mode": "alwaysOn"},
                {"waitForFailPoint": "failCommand", "timesEntered": 1, "maxTimeMS": 10}):
        with pytest.raises(OperationFailure) as e:
            client.admin.command(cmd)
        assert e.value.code == 59
    assert client.admin.command({"getParameter": 1, "enableTestCommands": 1})["enableTestCommands"] == 0


def test_get_parameter_reports_test_commands(admin):
    assert admin.command({"getParameter": 1, "enableTestCommands": 1})["enableTestCommands"] == 1


def test_test_commands_refused_with_auth_unless_allowed():
    cfg = config.Config({"enable_test_commands": True, "auth": True, "allow_test_commands_with_auth": False}, {})
    with pytest.raises(config.ConfigError, match="allow_test_commands_with_auth"):
        config.validate(cfg)
    config.validate(config.Config({"enable_test_commands": True, "auth": True,
                                   "allow_test_commands_with_auth": True}, {}))
    config.validate(config.Config({"enable_test_commands": True, "auth": False}, {}))
    assert config.load({"enable_test_commands": "true"}, env={}).enable_test_commands is True
    assert config.load({}, env={"MONGOLAKE_ENABLE_TEST_COMMANDS": "1"}).enable_test_commands is True
    assert config.load({}, env={}).enable_test_commands is False


def test_configure_fail_point_errors(admin, fp_server):
    with RawMsg(fp_server.port) as raw:
        def code(body):
            r = raw.cmd(body)
            assert r["ok"] == 0.0, r
            return r["code"]
        assert code({"configureFailPoint": "failCommand", "mode": "alwaysOn", "$db": "fp"}) == 13
        assert code({"configureFailPoint": "noSuchPoint", "mode": "off", "$db": "admin"}) == 266
        assert code({"configureFailPoint": "failCommand", "$db": "admin"}) == 20
        assert code({"configureFailPoint": "failCommand", "mode": "sometimes", "$db": "admin"}) == 2
        assert code({"configureFailPoint": "failCommand", "mode": 3, "$db": "admin"}) == 14
        assert code({"configureFailPoint": "failCommand", "mode": {"times": -1}, "$db": "admin"}) == 2
        assert code({"configureFailPoint": "failCommand", "mode": {"activationProbability": 2}, "$db": "admin"}) == 2
        assert code({"configureFailPoint": "failCommand", "mode": {"forever": 1}, "$db": "admin"}) == 2
        assert code({"configureFailPoint": "failCommand", "mode": "alwaysOn", "data": 1, "$db": "admin"}) == 14
        assert code({"configureFailPoint": "failCommand", "mode": "alwaysOn", "$db": "admin",
                     "data": {"failCommands": ["find"], "blockConnection": True}}) == 72
        assert code({"configureFailPoint": "failCommand", "mode": "alwaysOn", "$db": "admin",
                     "data": {"failCommands": "find", "errorCode": 2}}) == 14
        # the fail point was never switched on by the refused attempts
        assert raw.cmd({"find": "x", "$db": "fp"})["ok"] == 1.0


# -- pymongo: retries, resumption, modes --------------------------------------------------------

def test_close_connection_on_insert_is_retried_once(admin, fp_server):
    events = Listener()
    with MongoClient(fp_server.url, retryWrites=True, event_listeners=[events]) as c:
        coll = c.fp.closeconn
        coll.drop()
        fail(admin, {"times": 1}, failCommands=["insert"], closeConnection=True)
        coll.insert_one({"_id": 1, "v": "x"})
        assert coll.count_documents({}) == 1 and coll.find_one() == {"_id": 1, "v": "x"}
        inserts = events.of("insert")
        assert len(inserts) == 2                                     # the cut attempt and the retry
        assert inserts[0]["txnNumber"] == inserts[1]["txnNumber"] and inserts[0]["lsid"] == inserts[1]["lsid"]
        assert len(events.of("insert", "failed")) == 1 and len(events.of("insert", "succeeded")) == 1
        coll.insert_one({"_id": 2})                                  # {times: 1} is used up
        assert len(events.of("insert")) == 3 and coll.count_documents({}) == 2


def test_close_connection_without_retry_is_a_network_error_and_writes_nothing(admin, fp_server):
    with MongoClient(fp_server.url, retryWrites=False) as c:
        coll = c.fp.closeconn_noretry
        coll.drop()
        fail(admin, {"times": 1}, failCommands=["insert"], closeConnection=True)
        with pytest.raises(AutoReconnect):
            coll.insert_one({"_id": 1})
        assert coll.count_documents({}) == 0


def test_retryable_error_code_on_insert_is_retried(admin, fp_server):
    """A shutdown code makes pymongo mark the server Unknown and wait for its monitor's next
    hello (as with mongod): a short heartbeat keeps that wait short."""
    events = Listener()
    with MongoClient(fp_server.url, retryWrites=True, event_listeners=[events], heartbeatFrequencyMS=500) as c:
        coll = c.fp.retrycode
        coll.drop()
        fail(admin, {"times": 1}, failCommands=["insert"], errorCode=91)
        coll.insert_one({"_id": 1})
        failed = events.of("insert", "failed")
        assert len(failed) == 1 and failed[0]["code"] == 91 and "RetryableWriteError" in failed[0]["errorLabels"]
        assert coll.count_documents({}) == 1


def test_write_concern_error_applies_after_the_write(admin, fp_server):
    with MongoClient(fp_server.url, retryWrites=False) as c:
        coll = c.fp.wce
        coll.drop()
        fail(admin, {"times": 1}, failCommands=["insert"], writeConcernError={"code": 64, "errmsg": "waiting"})
        with pytest.raises(WriteConcernError) as e:
            coll.insert_one({"_id": 1})
        assert e.value.code == 64
        assert coll.count_documents({}) == 1                         # the write happened
    events = Listener()
    with MongoClient(fp_server.url, retryWrites=True, event_listeners=[events], heartbeatFrequencyMS=500) as c:
        coll = c.fp.wce
        fail(admin, {"times": 1}, failCommands=["insert"], writeConcernError={"code": 91, "errmsg": "shutdown"})
        coll.insert_one({"_id": 2})                                  # retried (RetryableWriteError), applied once
        replies = events.of("insert", "succeeded")
        assert replies[0]["writeConcernError"]["code"] == 91 and replies[0]["errorLabels"] == ["RetryableWriteError"]
        assert len(events.of("insert")) == 2 and "writeConcernError" not in replies[1]
        assert sorted(d["_id"] for d in coll.find()) == [1, 2]


def _next_events(cs, n, timeout=15.0):
    out, deadline = [], time.time() + timeout
    while len(out) < n:
        assert time.time() < deadline, f"{len(out)} of {n} events"
        ev = cs.try_next()
        if ev is not None:
            out.append(ev)
    return out


def _ids(evs):
    return [e["documentKey"]["_id"] for e in evs]


def _set_get_more_failure(admin, point, code, **extra):
    if point == "failCommand":
        fail(admin, {"times": 1}, failCommands=["getMore"], errorCode=code, **extra)
    else:
        admin.command({"configureFailPoint": point, "mode": {"times": 1}, "data": {"errorCode": code, **extra}})


@pytest.mark.parametrize("point", ["failCommand", "failGetMoreAfterCursorCheckout"])
def test_error_91_on_get_more_makes_a_change_stream_resume(admin, fp_server, point):
    """pymongo resumes by itself from its last token: no event lost or repeated. mongod
    labels the error ResumableChangeStreamError only once the getMore has checked its
    change-stream cursor out (failGetMoreAfterCursorCheckout); 91 is resumable either way
    (a "not primary" error, which also makes pymongo wait for its monitor's next hello:
    a short heartbeat keeps that short)."""
    events = Listener()
    with MongoClient(fp_server.url, event_listeners=[events], heartbeatFrequencyMS=500) as c:
        coll = c.fp["stream91" + point]
        coll.drop()
        with coll.watch(max_await_time_ms=AWAIT) as cs:
            coll.insert_one({"_id": 1})
            assert _ids(_next_events(cs, 1)) == [1]
            _set_get_more_failure(admin, point, 91)
            coll.insert_many([{"_id": 2}, {"_id": 3}])
            coll.insert_one({"_id": 4})
            assert _ids(_next_events(cs, 3)) == [2, 3, 4]
            coll.insert_one({"_id": 5})
            assert _ids(_next_events(cs, 1)) == [5]
            assert cs.try_next() is None
        failed = events.of("getMore", "failed")
        assert len(failed) == 1 and failed[0]["code"] == 91
        labels = ["ResumableChangeStreamError"] if point != "failCommand" else None
        assert failed[0].get("errorLabels") == labels
        aggs = [a for a in events.of("aggregate") if "$changeStream" in a["pipeline"][0]]
        assert len(aggs) == 2 and "resumeAfter" in aggs[1]["pipeline"][0]["$changeStream"]


@pytest.mark.parametrize("point,extra,resumes", [
    ("failCommand", {}, False),                                        # as the drivers' spec tests expect
    ("failCommand", {"errorLabels": ["ResumableChangeStreamError"]}, True),
    ("failGetMoreAfterCursorCheckout", {}, True),
])
def test_resumable_label_decides_for_other_codes(admin, fp_server, point, extra, resumes):
    with MongoClient(fp_server.url) as c:
        coll = c.fp["streamlabel"]
        with coll.watch(max_await_time_ms=AWAIT) as cs:
            assert cs.try_next() is None
            _set_get_more_failure(admin, point, 6, **extra)          # HostUnreachable
            coll.insert_one({"n": 1})
            if resumes:
                assert [e["fullDocument"]["n"] for e in _next_events(cs, 1)] == [1]
            else:
                with pytest.raises(OperationFailure) as e:
                    _next_events(cs, 1)
                assert e.value.code == 6 and not e.value.has_error_label("ResumableChangeStreamError")


def test_times_two_fails_exactly_twice(admin, coll):
    coll.insert_one({"_id": 1})
    before = fail(admin, {"times": 2}, failCommands=["find"], errorCode=2)["count"]
    outcomes = []
    for _ in range(4):
        try:
            outcomes.append(coll.find_one({"_id": 1}))
        except OperationFailure as e:
            outcomes.append(e.code)
    assert outcomes == [2, 2, {"_id": 1}, {"_id": 1}]
    assert fail(admin, "off")["count"] == before + 2


def test_skip_and_activation_probability(admin, fp_server):
    with RawMsg(fp_server.port) as raw:
        fail(admin, {"skip": 2}, failCommands=["count"], errorCode=2)
        codes = [raw.cmd({"count": "c", "$db": "fp"}).get("code") for _ in range(5)]
        assert codes == [None, None, 2, 2, 2]                       # after the skips: always
        fail(admin, {"activationProbability": 0.5}, failCommands=["ping"], errorCode=2)
        oks = [raw.cmd({"ping": 1, "$db": "admin"})["ok"] for _ in range(200)]
        assert 20 < oks.count(1.0) < 180
        fail(admin, {"activationProbability": 1}, failCommands=["ping"], errorCode=2)
        assert raw.cmd({"ping": 1, "$db": "admin"})["ok"] == 0.0
        fail(admin, {"activationProbability": 0}, failCommands=["ping"], errorCode=2)
        assert raw.cmd({"ping": 1, "$db": "admin"})["ok"] == 1.0


def test_skip_counts_only_matching_commands(admin, fp_server):
    with RawMsg(fp_server.port) as raw:
        fail(admin, {"skip": 1}, failCommands=["count"], errorCode=2)
        for _ in range(3):
            assert raw.cmd({"ping": 1, "$db": "admin"})["ok"] == 1.0     # not matching: skip untouched
        assert raw.cmd({"count": "c", "$db": "fp"})["ok"] == 1.0
        assert raw.cmd({"count": "c", "$db": "fp"})["code"] == 2


def test_block_connection_delays_only_the_named_command(admin, coll):
    coll.insert_one({"_id": 1})
    fail(admin, "alwaysOn", failCommands=["find"], blockConnection=True, blockTimeMS=1000)
    t0 = time.perf_counter()
    assert coll.find_one({"_id": 1}) == {"_id": 1}                   # delayed, then answered normally
    assert time.perf_counter() - t0 >= 1.0
    t0 = time.perf_counter()
    coll.insert_one({"_id": 2})
    assert coll.count_documents({}) == 2
    coll.database.command("ping")
    assert time.perf_counter() - t0 < 0.5
    # a blocked command holds up only its own connection
    done = []
    th = threading.Thread(target=lambda: done.append(coll.find_one({"_id": 2})))
    th.start()
    time.sleep(0.1)
    t0 = time.perf_counter()
    coll.update_one({"_id": 1}, {"$set": {"x": 1}})
    assert time.perf_counter() - t0 < 0.7 and not done
    th.join(5)
    assert done == [{"_id": 2}]


def test_block_then_error(admin, coll):
    fail(admin, {"times": 1}, failCommands=["find"], blockConnection=True, blockTimeMS=300, errorCode=2)
    t0 = time.perf_counter()
    with pytest.raises(OperationFailure) as e:
        coll.find_one()
    assert e.value.code == 2 and time.perf_counter() - t0 >= 0.3
    assert e.value.details["errmsg"] == "Failing command via 'failCommand' failpoint"


def test_off_restores_normal_behaviour(admin, coll):
    fail(admin, "alwaysOn", failCommands=["insert", "update"], errorCode=2)
    for _ in range(2):
        with pytest.raises(OperationFailure):
            coll.insert_one({"_id": 1})
    with pytest.raises(OperationFailure):
        coll.update_one({"_id": 1}, {"$set": {"x": 1}}, upsert=True)
    assert coll.count_documents({}) == 0                              # failed writes changed nothing
    fail(admin, "off")
    coll.insert_one({"_id": 1})
    coll.update_one({"_id": 1}, {"$set": {"x": 1}})
    assert coll.find_one() == {"_id": 1, "x": 1}


def test_app_name_filter(admin, fp_server):
    with MongoClient(fp_server.url, appname="victim", retryReads=False) as victim, \
            MongoClient(fp_server.url, appname="bystander", retryReads=False) as bystander:
        victim.fp.apps.insert_one({"_id": 1})
        fail(admin, "alwaysOn", failCommands=["find"], errorCode=2, appName="victim")
        with pytest.raises(OperationFailure):
            victim.fp.apps.find_one()
        assert bystander.fp.apps.find_one() == {"_id": 1}
        with RawMsg(fp_server.port) as raw:                          # no handshake metadata: no app name
            assert raw.cmd({"find": "apps", "$db": "fp"})["ok"] == 1.0


def test_namespace_filter(admin, fp_server):
    with RawMsg(fp_server.port) as raw:
        fail(admin, "alwaysOn", failCommands=["find"], errorCode=2, namespace="fp.one")
        assert raw.cmd({"find": "one", "$db": "fp"})["code"] == 2
        assert raw.cmd({"find": "two", "$db": "fp"})["ok"] == 1.0


def test_internal_clients_only_with_fail_internal_commands(admin, fp_server):
    with RawMsg(fp_server.port) as raw:
        raw.cmd({"hello": 1, "internalClient": {"minWireVersion": 0, "maxWireVersion": 25}, "$db": "admin"})
        fail(admin, "alwaysOn", failCommands=["ping"], errorCode=2)
        assert raw.cmd({"ping": 1, "$db": "admin"})["ok"] == 1.0
        fail(admin, "alwaysOn", failCommands=["ping"], errorCode=2, failInternalCommands=True)
        assert raw.cmd({"ping": 1, "$db": "admin"})["code"] == 2


def test_hello_can_be_failed_and_configure_fail_point_never_is(admin, fp_server):
    with RawMsg(fp_server.port) as raw:
        fail(admin, "alwaysOn", failCommands=["isMaster", "configureFailPoint"], errorCode=91)
        r = raw.cmd({"ismaster": 1, "$db": "admin"})                 # an alias matches
        assert r["code"] == 91 and "errorLabels" not in r
        r = raw.cmd({"configureFailPoint": "failCommand", "mode": "off", "$db": "admin"})
        assert r["ok"] == 1.0
        assert raw.cmd({"ismaster": 1, "$db": "admin"})["ok"] == 1.0


def test_wait_for_fail_point(admin, fp_server):
    fail(admin, {"times": 1}, failCommands=["ping"], blockConnection=True, blockTimeMS=50)
    entered = fail(admin, {"times": 1}, failCommands=["ping"], blockConnection=True, blockTimeMS=50)["count"]
    with pytest.raises(OperationFailure) as e:
        admin.command({"waitForFailPoint": "failCommand", "timesEntered": entered + 1, "maxTimeMS": 100})
    assert e.value.code == 50
    pinger = threading.Timer(0.1, lambda: admin.command("ping"))
    pinger.start()
    admin.command({"waitForFailPoint": "failCommand", "timesEntered": entered + 1, "maxTimeMS": 5000})
    pinger.join(5)


# -- exact error labels (raw OP_MSG) --------------------------------------------------------------

def test_error_labels_follow_mongod(admin, fp_server):
    with RawMsg(fp_server.port) as raw:
        def run(body):
            return _raw(raw.cmd({**body, "$db": "fp"}))
        ins = {"insert": "labels", "documents": [{"a": 1}]}
        fail(admin, "alwaysOn", failCommands=["insert", "find", "commitTransaction", "aggregate"], errorCode=91)
        lsid = new_lsid()
        r = run({**ins, "lsid": lsid, "txnNumber": txn(1)})          # a retryable write
        assert r["code"] == 91 and r["codeName"] == "ShutdownInProgress" and r["errorLabels"] == ["RetryableWriteError"]
        assert "errorLabels" not in run(ins)                         # not retryable
        assert "errorLabels" not in run({"find": "labels"})          # a read
        r = run({**ins, "lsid": lsid, "txnNumber": txn(2), "startTransaction": True, "autocommit": False})
        assert r["errorLabels"] == ["TransientTransactionError"]
        r = _raw(raw.cmd({"commitTransaction": 1, "lsid": lsid, "txnNumber": txn(2), "autocommit": False,
                          "$db": "admin"}))
        assert r["errorLabels"] == ["RetryableWriteError"]
        r = run({"aggregate": "labels", "pipeline": [{"$changeStream": {}}], "cursor": {}})
        assert r["errorLabels"] == ["ResumableChangeStreamError"]
        assert "errorLabels" not in run({"aggregate": "labels", "pipeline": [], "cursor": {}})

        fail(admin, "alwaysOn", failCommands=["insert"], errorCode=11000)   # not retryable
        assert "errorLabels" not in run({**ins, "lsid": lsid, "txnNumber": txn(3)})
        fail(admin, "alwaysOn", failCommands=["insert"], errorCode=112)     # WriteConflict
        r = run({**ins, "lsid": lsid, "txnNumber": txn(4), "startTransaction": True, "autocommit": False})
        assert r["errorLabels"] == ["TransientTransactionError"]
        fail(admin, "alwaysOn", failCommands=["insert"], errorCode=91, errorLabels=[])
        assert "errorLabels" not in run({**ins, "lsid": lsid, "txnNumber": txn(5)})
        fail(admin, "alwaysOn", failCommands=["insert"], errorCode=2, errorLabels=["Custom", "RetryableWriteError"])
        assert run(ins)["errorLabels"] == ["Custom", "RetryableWriteError"]
        fail(admin, "alwaysOn", failCommands=["find"], errorCode=280)
        assert run({"find": "labels"})["errorLabels"] == ["NonResumableChangeStreamError"]
        fail(admin, "off")
        assert run({"find": "labels"})["cursor"]["firstBatch"] == []   # nothing was ever inserted


def test_no_writes_performed_after_an_earlier_write(admin, fp_server):
    with RawMsg(fp_server.port) as raw:
        lsid = new_lsid()
        assert raw.cmd({"insert": "nwp", "documents": [{"_id": 1}], "$db": "fp"})["ok"] == 1.0
        fail(admin, "alwaysOn", failCommands=["insert"], errorCode=189)
        r = raw.cmd({"insert": "nwp", "documents": [{"_id": 2}], "lsid": lsid, "txnNumber": txn(1), "$db": "fp"})
        assert r["errorLabels"] == ["RetryableWriteError", "NoWritesPerformed"]


def test_write_concern_error_labels_and_transactions(admin, fp_server):
    with RawMsg(fp_server.port) as raw:
        lsid = new_lsid()
        fail(admin, "alwaysOn", failCommands=["insert", "find"], writeConcernError={"code": 91, "errmsg": "x"})
        r = _raw(raw.cmd({"insert": "wcel", "documents": [{"_id": 1}], "lsid": lsid, "txnNumber": txn(1),
                          "$db": "fp"}))
        assert r["ok"] == 1.0 and r["n"] == 1 and r["writeConcernError"] == {"code": 91, "errmsg": "x"}
        assert r["errorLabels"] == ["RetryableWriteError"]
        r = _raw(raw.cmd({"insert": "wcel", "documents": [{"_id": 2}], "$db": "fp"}))
        assert r["writeConcernError"]["code"] == 91 and "errorLabels" not in r
        assert "writeConcernError" not in raw.cmd({"find": "wcel", "$db": "fp"})     # reads take no write concern
        # inside a transaction only commit/abort take a write concern
        r = raw.cmd({"insert": "wcel", "documents": [{"_id": 3}], "lsid": lsid, "txnNumber": txn(2),
                     "startTransaction": True, "autocommit": False, "$db": "fp"})
        assert r["ok"] == 1.0 and "writeConcernError" not in r
        fail(admin, {"times": 1}, failCommands=["commitTransaction"], writeConcernError={"code": 64, "errmsg": "y"})
        r = raw.cmd({"commitTransaction": 1, "lsid": lsid, "txnNumber": txn(2), "autocommit": False, "$db": "admin"})
        assert r["ok"] == 1.0 and r["writeConcernError"]["code"] == 64 and "errorLabels" not in r
        assert sorted(d["_id"] for d in raw.cmd({"find": "wcel", "$db": "fp"})["cursor"]["firstBatch"]) == [1, 2, 3]
