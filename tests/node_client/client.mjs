// A userprov client written from the README and contracts/generated/ alone: it publishes
// commands and a query over AMQP (amqplib) and validates every message it sends and receives
// against the published JSON Schemas (ajv). Exit status 0 when every step and check held.
//   USERPROV_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/vhost node client.mjs
import { randomUUID } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import amqp from "amqplib";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const generated = new URL("../../contracts/generated/", import.meta.url);
const asyncapi = JSON.parse(await readFile(new URL("asyncapi.json", generated), "utf8"));
const exchangeOf = {};  // message name -> exchange, from the AsyncAPI channels
for (const channel of Object.values(asyncapi.channels)) {
  for (const ref of Object.values(channel.messages)) {
    const name = asyncapi.components.messages[ref.$ref.split("/").pop()].name;
    if (channel.address) exchangeOf[name] = channel.address;
  }
}
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const validators = {};
for (const file of await readdir(new URL("schemas/", generated))) {
  const schema = JSON.parse(await readFile(new URL(`schemas/${file}`, generated), "utf8"));
  validators[file.replace(/\.json$/, "")] = ajv.compile(schema);
}

const failures = [];
const seen = {};
function check(type, body, where) {
  const validate = validators[type];
  if (!validate) return failures.push(`${where}: no schema for type ${type}`);
  if (!validate(body)) failures.push(`${where} ${type}: ${ajv.errorsText(validate.errors)}`);
  seen[type] = (seen[type] || 0) + 1;
}

const connection = await amqp.connect(process.env.USERPROV_AMQP_URL);
const channel = await connection.createConfirmChannel();
const events = await channel.assertQueue("", { exclusive: true });
await channel.bindQueue(events.queue, "userprov.events", "#");
const replies = await channel.assertQueue("", { exclusive: true });
const waiting = [];  // {match, resolve}
function received(kind) {
  return (message) => {
    const body = JSON.parse(message.content.toString("utf8"));
    const type = message.properties.type;
    check(type, body, kind);
    const entry = { type, body, properties: message.properties };
    history.push(entry);
    for (const w of [...waiting]) {
      if (w.match(entry)) { waiting.splice(waiting.indexOf(w), 1); w.resolve(entry); }
    }
  };
}
const history = [];  // everything received, so that a wait also finds what came before it began
await channel.consume(events.queue, received("event"), { noAck: true });
await channel.consume(replies.queue, received("reply"), { noAck: true });

function next(match, what, seconds = 30) {
  const earlier = history.find(match);
  if (earlier) return Promise.resolve(earlier);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), seconds * 1000);
    waiting.push({ match, resolve: (e) => { clearTimeout(timer); resolve(e); } });
  });
}

async function publish(type, body, properties = {}) {
  check(type, body, "sent");  // the client validates what it sends, too
  const messageId = properties.messageId || randomUUID();
  channel.publish(exchangeOf[type], type, Buffer.from(JSON.stringify(body)), {
    contentType: "application/json", deliveryMode: 2, messageId, type, ...properties,
  });
  await channel.waitForConfirms();
  return messageId;
}

const run = randomUUID().slice(0, 8);
const accountId = `node-${run}`;
const upsertId = await publish("accounts.upsert", { account_id: accountId, name: "Node Client Co", licences: { gotomeeting: 5 } });
await next((e) => e.type === "account.upserted" && e.properties.correlationId === upsertId, "account.upserted");

const people = [`ada.${run}@example.com`, `grace.${run}@example.com`];
const addId = await publish("users.add", {
  account_id: accountId, products: ["gotomeeting"], language: "fr",
  pasted: `Ada Lovelace ${people[0]}\nGrace Hopper ${people[1]}\nbroken-entry`,
});
const completed = await next((e) => e.type === "users.add.completed" && e.body.command_id === addId, "users.add.completed");
const outcomes = completed.body.results.map((r) => r.outcome);
if (JSON.stringify(outcomes) !== JSON.stringify(["accepted", "accepted", "rejected"])) failures.push(`results: ${outcomes}`);
for (const email of people) {
  await next((e) => e.type === "invitation.sent" && e.body.email === email, `invitation.sent to ${email}`);
}

async function query(type, body) {
  const correlationId = randomUUID();
  const answer = next((e) => e.properties.correlationId === correlationId && e.properties.type !== undefined
    && (e.type === `${type}.reply` || e.type === "command.rejected") && e.body !== undefined, `${type} answer`);
  await publish(type, body, { correlationId, replyTo: replies.queue });
  return answer;
}
const account = await query("accounts.get", { account_id: accountId });
if (account.type !== "accounts.get.reply" || account.body.licences.gotomeeting.used !== 2) {
  failures.push(`accounts.get answered ${account.type} ${JSON.stringify(account.body)}`);
}
const listed = await query("users.list", { account_id: accountId, count: 10 });
if (listed.type !== "users.list.reply" || listed.body.total !== 2
  || JSON.stringify(listed.body.users.map((u) => u.email).sort()) !== JSON.stringify([...people].sort())) {
  failures.push(`users.list answered ${listed.type} ${JSON.stringify(listed.body)}`);
}
const outcome = await query("commands.get", { command_id: addId });
if (outcome.body.outcome !== "done" || outcome.body.events[0].type !== "users.add.completed") {
  failures.push(`commands.get answered ${JSON.stringify(outcome.body)}`);
}
for (const e of outcome.body.events) check(e.type, e.body, "commands.get event");
// how far a users.add came: its two people were emailed (invitation.sent above), the broken entry refused
const expected = JSON.stringify({ rows: 3, created: 2, invited: 2, emailed: 2, failed: 1, done: true });
if (JSON.stringify(outcome.body.progress) !== expected) failures.push(`commands.get's progress: ${JSON.stringify(outcome.body.progress)}`);
const polled = await query("commands.get", { command_id: addId, include_events: false });
if (polled.body.events.length !== 0 || JSON.stringify(polled.body.progress) !== expected) {
  failures.push(`commands.get without events answered ${JSON.stringify(polled.body)}`);
}
// the account's audit trail, newest first, one entry a page: the cursor leads to the next
const audited = await query("audit.list", { account_id: accountId, limit: 1 });
if (audited.type !== "audit.list.reply" || audited.body.entries.length !== 1 || audited.body.next_cursor === null
  || audited.body.checkpoint.seq !== 0 || audited.body.entries[0].seq !== audited.body.head.seq) {
  failures.push(`audit.list answered ${audited.type} ${JSON.stringify(audited.body)}`);
} else {
  const older = await query("audit.list", { account_id: accountId, limit: 1, cursor: audited.body.next_cursor });
  if (older.type !== "audit.list.reply" || older.body.entries[0].seq !== audited.body.entries[0].seq - 1) {
    failures.push(`audit.list's next page answered ${older.type} ${JSON.stringify(older.body)}`);
  }
}
// what a link handler asks before it shows a link's page: a token nobody was sent is unknown
const peeked = await query("invitations.peek", { token: randomUUID().replaceAll("-", "") });
if (peeked.type !== "invitations.peek.reply" || peeked.body.status !== "unknown") {
  failures.push(`invitations.peek answered ${peeked.type} ${JSON.stringify(peeked.body)}`);
}

// a dry run foretells each row and does nothing; accounts.get answers the invitation quota and what is left of it
const quotaId = await publish("accounts.upsert", { account_id: accountId, invitation_quota_per_day: 10 });
await next((e) => e.type === "account.upserted" && e.properties.correlationId === quotaId, "account.upserted of the quota");
const dryId = await publish("users.add", {
  account_id: accountId, products: ["gotomeeting"], dry_run: true,
  users: [{ first_name: "Alan", last_name: "Turing", email: `alan.${run}@example.com` },
    { first_name: "Ada", last_name: "Lovelace", email: people[0] }],
});
const dry = await next((e) => e.type === "users.add.completed" && e.body.command_id === dryId, "the dry run's users.add.completed");
if (dry.body.dry_run !== true
  || JSON.stringify(dry.body.results.map((r) => [r.outcome, r.invitation])) !== JSON.stringify([["accepted", "welcome"], ["already_member", null]])
  || JSON.stringify(dry.body.seats) !== JSON.stringify([{ product: "gotomeeting", needed: 1, free: 3 }])) {
  failures.push(`the dry run answered ${JSON.stringify(dry.body)}`);
}
const quota = await query("accounts.get", { account_id: accountId });
if (quota.body.invitation_quota_per_day !== 10 || quota.body.invitations_left !== 8 || quota.body.licences.gotomeeting.used !== 2) {
  failures.push(`accounts.get after the dry run answered ${JSON.stringify(quota.body)}`);
}

// a refused query is answered too: with the command.rejected body
const correlationId = randomUUID();
const refusal = next((e) => e.properties.correlationId === correlationId && e.type === "command.rejected"
  && e.properties.replyTo === undefined && e.body.reason === "schema_invalid", "the refusal of a bad query");
channel.publish("userprov.commands", "users.get", Buffer.from(JSON.stringify({ account_id: accountId })), {
  contentType: "application/json", messageId: randomUUID(), type: "users.get", correlationId, replyTo: replies.queue,
});
await channel.waitForConfirms();
await refusal;

await connection.close();
console.log(`validated ${JSON.stringify(seen)}`);
if (failures.length) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log("node client: every step and every message valid");
