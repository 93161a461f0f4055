// mongoose against MongoLake: transactions through mongoose's own API.
// Usage: node mongoose_txn.js <mongodb-url>; prints one line "RESULT <json>".
const mongoose = require("mongoose");

async function main() {
  const url = process.argv[2];
  await mongoose.connect(url, { dbName: "mongoosetxn", serverSelectionTimeoutMS: 10000 });
  const Account = mongoose.model("Account", new mongoose.Schema({ _id: Number, owner: String, balance: Number }));
  const Audit = mongoose.model("Audit", new mongoose.Schema({ from: Number, to: Number, amount: Number }));
  await Account.deleteMany({});
  await Audit.deleteMany({});
  await Account.create([{ _id: 1, owner: "ann", balance: 100 }, { _id: 2, owner: "bob", balance: 50 }]);
  const out = {};

  // 1. connection.transaction(): commits both updates and the audit document together
  await mongoose.connection.transaction(async (session) => {
    await Account.updateOne({ _id: 1 }, { $inc: { balance: -30 } }, { session });
    await Account.updateOne({ _id: 2 }, { $inc: { balance: 30 } }, { session });
    await Audit.create([{ from: 1, to: 2, amount: 30 }], { session });
    // inside: own writes visible; outside: not yet
    out.insideAnn = (await Account.findById(1).session(session)).balance;
    out.outsideAnn = (await Account.findById(1)).balance;
  });
  out.afterCommit = (await Account.find().sort({ _id: 1 }).lean()).map((a) => a.balance);
  out.audits = await Audit.countDocuments();

  // 2. an error thrown in the callback aborts: nothing of the transaction remains
  try {
    await mongoose.connection.transaction(async (session) => {
      await Account.updateOne({ _id: 1 }, { $inc: { balance: -1000 } }, { session });
      await Audit.create([{ from: 1, to: 2, amount: 1000 }], { session });
      throw new Error("insufficient funds");
    });
  } catch (e) {
    out.abortedWith = e.message;
  }
  out.afterAbort = (await Account.find().sort({ _id: 1 }).lean()).map((a) => a.balance);
  out.auditsAfterAbort = await Audit.countDocuments();

  // 3. explicit session API: startTransaction / abortTransaction / commitTransaction
  const session = await mongoose.startSession();
  session.startTransaction();
  await Account.create([{ _id: 3, owner: "cy", balance: 1 }], { session });
  await session.abortTransaction();
  session.startTransaction();
  await Account.create([{ _id: 4, owner: "di", balance: 2 }], { session });
  await session.commitTransaction();
  await session.endSession();
  out.ids = (await Account.find().sort({ _id: 1 }).lean()).map((a) => a._id);

  console.log("RESULT " + JSON.stringify(out));
  await mongoose.disconnect();
}

main().catch(async (e) => {
  console.error(e);
  try { await mongoose.disconnect(); } catch (_) { /* ignore */ }
  process.exit(1);
});
