// Node driver change streams against MongoLake, run by
// tests/commands/test_change_streams_drivers.py as: node driver_watch.js <uri>.
// changeStream.on('change') at collection and cluster level, a resume with a token,
// fullDocument: 'updateLookup'. Prints "RESULT <json>".
const { MongoClient } = require("mongodb");

function collect(stream, n) {
  return new Promise((resolve, reject) => {
    const got = [];
    const timer = setTimeout(() => reject(new Error(`only ${got.length} of ${n} events`)), 20000);
    stream.on("change", (ev) => {
      got.push(ev);
      if (got.length === n) {
        clearTimeout(timer);
        resolve(got);
      }
    });
    stream.on("error", reject);
  });
}

// the first resume token arrives with the reply to the stream's aggregate: from then on
// the stream sees every write
function opened(stream) {
  return new Promise((resolve) => stream.once("resumeTokenChanged", resolve));
}

async function main() {
  const client = new MongoClient(process.argv[2], { serverSelectionTimeoutMS: 10000 });
  await client.connect();
  const out = {};
  try {
    const db = client.db("node_watch");
    await db.dropDatabase();
    const c = db.collection("items");
    await c.insertOne({ _id: 0 });
    const stream = c.watch([], { fullDocument: "updateLookup", maxAwaitTimeMS: 300 });
    const cluster = client.watch([{ $match: { "ns.db": "node_watch" } }], { maxAwaitTimeMS: 300 });
    const events = collect(stream, 4);
    const clusterEvents = collect(cluster, 4);
    await Promise.all([opened(stream), opened(cluster)]);
    await c.insertOne({ _id: 1, v: 1 });
    await c.updateOne({ _id: 1 }, { $inc: { v: 1 } });
    await c.replaceOne({ _id: 1 }, { v: 10 });
    await c.deleteOne({ _id: 1 });
    const evs = await events;
    out.ops = evs.map((e) => e.operationType);
    out.lookup = evs[1].fullDocument;
    out.ns = evs[0].ns;
    out.cluster = (await clusterEvents).map((e) => e.operationType);
    await stream.close();
    await cluster.close();
    const resumed = c.watch([], { resumeAfter: evs[1]._id, maxAwaitTimeMS: 300 });
    out.resumed = (await collect(resumed, 2)).map((e) => [e.operationType, e.documentKey._id]);
    await resumed.close();
  } finally {
    await client.close();
  }
  console.log("RESULT " + JSON.stringify(out));
}

main().catch((e) => {
  console.error("FAILED", e);
  process.exit(1);
});
