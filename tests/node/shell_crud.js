// mongosh script run by tests/commands/test_shell.py: CRUD, aggregation and indexes
// through the shell's own API; prints one line "RESULT <extended JSON>".
const out = {};
db.people.drop();
out.insertOne = db.people.insertOne({ _id: 1, name: "ann", n: 1 }).acknowledged;
out.insertMany = db.people.insertMany([{ _id: 2, name: "bob", n: 2 }, { _id: 3, name: "cy", n: 3 }]).insertedIds;
out.find = db.people.find({ n: { $gte: 2 } }, { _id: 0, name: 1 }).sort({ n: 1 }).toArray();
const u = db.people.updateMany({ n: { $gte: 2 } }, { $inc: { n: 10 } });
out.updateMany = { matched: u.matchedCount, modified: u.modifiedCount };
out.deleteOne = db.people.deleteOne({ _id: 1 }).deletedCount;
out.aggregate = db.people.aggregate([{ $group: { _id: null, total: { $sum: "$n" } } }]).toArray();
out.createIndex = db.people.createIndex({ name: 1 }, { unique: true });
out.indexes = db.people.getIndexes().map((i) => i.name);
out.count = db.people.countDocuments();
try {
  db.people.insertOne({ _id: 9, name: "bob" });
} catch (e) {
  out.dupCode = e.code;
}
out.findOne = db.people.findOne({ _id: 3 });
out.bigCursor = (function () {
  db.many.drop();
  db.many.insertMany(Array.from({ length: 500 }, (_, i) => ({ _id: i })));
  return db.many.find().batchSize(50).toArray().length;
})();
out.stats = db.people.stats().count;
out.serverStatusOk = db.serverStatus().ok;
out.currentOp = db.currentOp().ok;
print("RESULT " + EJSON.stringify(out));
