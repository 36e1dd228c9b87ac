// Parses and validates contracts/generated/asyncapi.json with the AsyncAPI project's own parser
// (the AsyncAPI 3.0 JSON Schema and its spectral rules); exits non-zero on any error.
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

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
const operations = document.operations().all();
console.log(`asyncapi.json is valid AsyncAPI ${document.version()}: ${document.channels().length} channels, ` +
  `${operations.length} operations, ${operations.filter((o) => o.reply()).length} with a reply`);
