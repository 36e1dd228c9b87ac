// Adds people to an account through userprov's wire interface with amqplib, and prints the
// outcome: what a client in Node.js needs.
//   cd examples/node && npm ci
//   USERPROV_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ \
//     node publish-users-add.mjs acme-42 "Ada Lovelace ada@example.com; Alan Turing alan@example.com" \
//     --product gotomeeting
// The same arguments as examples/publish_users_add.py: the account, the pasted list, --product
// (-p) for each licence each person gets, --requested-by EMAIL, --timeout SECONDS.
// Exit status 0 when every row is in the account, 1 when a row or the command was refused, 2 when
// no outcome came in time. Without --requested-by, userprov takes the command only from a trusted
// platform service (a RabbitMQ user its workers' USERPROV_TRUSTED_PUBLISHERS names, every user
// while that is unset), sent as the message's user_id.
import { randomUUID } from "node:crypto";
import { parseArgs } from "node:util";
import amqp from "amqplib";

const USAGE = "usage: node publish-users-add.mjs ACCOUNT_ID PASTED_LIST [--product PRODUCT]... [--requested-by EMAIL] [--timeout SECONDS]";
let args;
try {
  args = parseArgs({
    allowPositionals: true,
    options: {
      product: { type: "string", short: "p", multiple: true, default: [] },  // a licence each person gets (repeatable)
      "requested-by": { type: "string" },  // email of the account's admin or manager who adds them
      timeout: { type: "string", default: "60" },  // seconds to wait for the outcome
    },
  });
} catch (error) {
  console.error(`${error.message}\n${USAGE}`);
  process.exit(2);
}
const [accountId, pasted, ...extra] = args.positionals;
const timeoutSeconds = Number(args.values.timeout);
if (!accountId || pasted === undefined || extra.length > 0 || !(timeoutSeconds > 0)) {
  console.error(USAGE);
  process.exit(2);
}
const url = process.env.USERPROV_AMQP_URL || "amqp://guest:guest@127.0.0.1:5672/";

const connection = await amqp.connect(url);
const channel = await connection.createConfirmChannel();
// a queue of our own for the outcome, bound before publishing so that it cannot be missed
const { queue } = await channel.assertQueue("", { exclusive: true, autoDelete: true });
for (const key of ["users.add.completed", "command.rejected"]) await channel.bindQueue(queue, "userprov.events", key);

const messageId = randomUUID();  // the idempotency key: publish again with the same id when unsure
const outcome = new Promise((resolve) => {
  channel.consume(queue, (message) => {
    // events carry the command's correlation id
    if (message.properties.correlationId === messageId) resolve([message.fields.routingKey, JSON.parse(message.content)]);
  }, { noAck: true });
});
const body = { account_id: accountId, pasted, products: args.values.product };
if (args.values["requested-by"]) body.requested_by = args.values["requested-by"];
channel.publish("userprov.commands", "users.add", Buffer.from(JSON.stringify(body)), {
  messageId, correlationId: messageId, type: "users.add", contentType: "application/json", deliveryMode: 2,
  mandatory: true, userId: decodeURIComponent(new URL(url).username || "guest"),  // RabbitMQ checks it is the connection's user
});
await channel.waitForConfirms();  // RabbitMQ has the message

let timer;
const timeout = new Promise((resolve) => { timer = setTimeout(() => resolve(null), timeoutSeconds * 1000); });
const received = await Promise.race([outcome, timeout]);
clearTimeout(timer);
await connection.close();
if (received === null) {
  console.error(`no outcome within ${timeoutSeconds} s: are userprov's workers running on this vhost?`);
  process.exit(2);
}
const [routingKey, event] = received;
if (routingKey === "command.rejected") {
  console.error(`refused: ${event.reason}: ${event.message}`);
  for (const error of event.errors) console.error(`  ${error.field}: ${error.code}: ${error.message}`);
  process.exit(1);
}
for (const row of event.results) {
  const errors = row.errors.map((e) => `${e.field}: ${e.code}`).join("; ");
  console.log(`row ${row.row}: ${row.outcome.padEnd(14)} ${row.email} ${errors}`.trimEnd());
}
process.exit(event.results.some((row) => row.outcome === "rejected") ? 1 : 0);
