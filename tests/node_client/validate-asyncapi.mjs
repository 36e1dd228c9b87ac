// Parses and validates contracts/generated/asyncapi.json with the AsyncAPI project's own parser
// (the AsyncAPI 3.0 JSON Schema and its spectral rules); exits non-zero on any error.
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const path = new URL("../../contracts/generated/asyncapi.json", import.meta.url);
const { document, diagnostics } = await new Parser().parse(await readFile(path, "utf8"));
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  console.log(`${["error", "warning", "info", "hint"][d.severity]} ${d.code} at ${d.path.join(".")}: ${d.message}`);
}
if (!document || errors.length) {
  console.error(`asyncapi.json: ${errors.length} error(s)`);
  process.exit(1);
}
// the parser does not check examples against their schemas: every example's properties and body are checked here
const raw = JSON.parse(await readFile(path, "utf8"));
const ajv = new Ajv2020({ allErrors: true, strict: false });
addFormats(ajv);
const headers = ajv.compile(raw.components.schemas.AmqpProperties);
let examples = 0;
for (const message of Object.values(raw.components.messages)) {
  const schema = JSON.parse(await readFile(new URL(`schemas/${message.name}.json`, path), "utf8"));
  const payload = ajv.compile(schema);
  for (const example of message.examples || []) {
    if (!headers(example.headers)) errors.push(`${message.name} example headers: ${ajv.errorsText(headers.errors)}`);
    if (!payload(example.payload)) errors.push(`${message.name} example payload: ${ajv.errorsText(payload.errors)}`);
    examples += 1;
  }
  if (!(message.examples || []).length) errors.push(`${message.name} has no example`);
}
if (errors.length) {
  console.error(errors.join("\n"));
  process.exit(1);
}
const operations = document.operations().all();
console.log(`asyncapi.json is valid AsyncAPI ${document.version()}: ${document.channels().length} channels, ` +
  `${operations.length} operations, ${operations.filter((o) => o.reply()).length} with a reply, ${examples} valid examples`);
