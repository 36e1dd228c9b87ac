// Adds people to an account through userprov's wire interface with amqplib, and prints the
// outcome: what a client in Node.js needs.
//   cd examples/node && npm ci
//   USERPROV_AMQP_URL=amqp://guest:guest@127.0.0.1:5672/ \
//     node publish-users-add.mjs acme-42 "Ada Lovelace ada@example.com; Alan Turing alan@example.com" gotomeeting
// Arguments: the account, the pasted list, then the products each person gets. Exit status 0 when
// every row is in the account, 1 when a row or the command was refused, 2 when no outcome came in
// time. REQUESTED_BY=<admin email> names the acting admin; without it, userprov takes the command
// only from a trusted platform service (a RabbitMQ user its workers' USERPROV_TRUSTED_PUBLISHERS
// names, every user while that is unset), sent as the message's user_id.
import { randomUUID } from "node:crypto";
import amqp from "amqplib";

const [accountId, pasted, ...products] = process.argv.slice(2);
if (!accountId || pasted === undefined) {
  console.error("usage: node publish-users-add.mjs ACCOUNT_ID PASTED_LIST [PRODUCT...]");
  process.exit(2);
}
const url = process.env.USERPROV_AMQP_URL || "amqp://guest:guest@127.0.0.1:5672/";
const timeoutSeconds = Number(process.env.TIMEOUT_SECONDS || 60);

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
const body = { account_id: accountId, pasted, products };
if (process.env.REQUESTED_BY) body.requested_by = process.env.REQUESTED_BY;
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
