// mongosh script run by tests/commands/test_change_streams_drivers.py: db.coll.watch()
// through the shell's own API (tryNext), then a resume with a token; prints
// "RESULT <extended JSON>".
const out = {};
db.cs.drop();
db.cs.insertOne({ _id: 0 });
function take(cs, n) {
  const evs = [];
  const deadline = Date.now() + 20000;
  while (evs.length < n && Date.now() < deadline) {
    const e = cs.tryNext();
    if (e !== null) evs.push(e);
  }
  return evs;
}
const cs = db.cs.watch([], { maxAwaitTimeMS: 300 });
cs.tryNext(); // the stream is open from here on
db.cs.insertOne({ _id: 1, v: "a" });
db.cs.updateOne({ _id: 1 }, { $set: { v: "b" } });
db.cs.deleteOne({ _id: 1 });
const evs = take(cs, 3);
out.ops = evs.map((e) => e.operationType);
out.keys = evs.map((e) => e.documentKey._id);
out.fullDocument = evs[0].fullDocument;
out.updated = evs[1].updateDescription.updatedFields;
out.tokenType = typeof cs.getResumeToken()._data;
cs.close();
const resumed = db.cs.watch([{ $match: { operationType: "delete" } }], { resumeAfter: evs[0]._id, maxAwaitTimeMS: 300 });
out.resumed = take(resumed, 1).map((e) => [e.operationType, e.documentKey._id]);
resumed.close();
const dbStream = db.watch([], { maxAwaitTimeMS: 300 });
dbStream.tryNext();
db.other.insertOne({ _id: 7 });
out.dbWatch = take(dbStream, 1).map((e) => [e.ns.coll, e.documentKey._id]);
dbStream.close();
print("RESULT " + EJSON.stringify(out));
