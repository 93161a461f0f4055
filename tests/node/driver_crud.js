// Node driver (the `mongodb` npm package) CRUD against MongoLake, run by
// tests/commands/test_shell.py as: node driver_crud.js <uri>. Prints "RESULT <json>".
const { MongoClient } = require("mongodb");

async function main() {
  const client = new MongoClient(process.argv[2], { serverSelectionTimeoutMS: 10000 });
  await client.connect();
  const out = {};
  try {
    const db = client.db("node_driver");
    await db.dropDatabase();
    const c = db.collection("items");
    out.insertMany = (await c.insertMany([{ _id: 1, k: "a", v: 1 }, { _id: 2, k: "b", v: 2 }, { _id: 3, k: "a", v: 3 }])).insertedCount;
    out.find = await c.find({ k: "a" }).sort({ v: -1 }).project({ _id: 1 }).toArray();
    const u = await c.updateOne({ _id: 2 }, { $set: { k: "a" }, $push: { tags: "x" } });
    out.updateOne = [u.matchedCount, u.modifiedCount];
    out.upsert = (await c.updateOne({ _id: 4 }, { $set: { v: 4 } }, { upsert: true })).upsertedId;
    out.fam = await c.findOneAndUpdate({ _id: 1 }, { $inc: { v: 100 } }, { returnDocument: "after" });
    out.deleteMany = (await c.deleteMany({ v: { $lt: 3 } })).deletedCount;
    out.count = await c.countDocuments();
    out.agg = await c.aggregate([{ $group: { _id: "$k", s: { $sum: "$v" } } }, { $sort: { _id: 1 } }]).toArray();
    try {
      await c.insertOne({ _id: 3 });
    } catch (e) {
      out.dupCode = e.code;
    }
    const bw = await c.bulkWrite([{ insertOne: { document: { _id: 10 } } }, { deleteOne: { filter: { _id: 10 } } }]);
    out.bulk = [bw.insertedCount, bw.deletedCount];
    const cb = await client.bulkWrite([
      { namespace: "node_driver.items", name: "insertOne", document: { _id: 20 } },
      { namespace: "node_driver.other", name: "insertOne", document: { _id: 21 } },
    ]);
    out.clientBulk = cb.insertedCount;
    out.collections = (await db.listCollections({}, { nameOnly: true }).toArray()).map((x) => x.name).sort();
    out.ping = (await db.admin().ping()).ok;
  } finally {
    await client.close();
  }
  console.log("RESULT " + JSON.stringify(out));
}

main().catch((e) => {
  console.error("FAILED", e);
  process.exit(1);
});
