// Reads a JSON array of KEDA objects on stdin and validates each against its CRD schema
// (kubernetes-models, generated from KEDA's CRDs). Prints one line per object; exits 1 if any fails.
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";

const kinds = { ScaledObject, TriggerAuthentication };
let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = 0;
for (const doc of JSON.parse(input)) {
  const Model = kinds[doc.kind];
  const name = `${doc.kind}/${doc.metadata?.name}`;
  if (!Model || doc.apiVersion !== "keda.sh/v1alpha1") {
    console.log(`FAIL ${name}: not a KEDA v1alpha1 kind this validator knows`);
    failed += 1;
    continue;
  }
  try {
    new Model(doc).validate();
    console.log(`ok ${name}`);
  } catch (error) {
    console.log(`FAIL ${name}: ${error.message}`);
    failed += 1;
  }
}
process.exit(failed ? 1 : 0);
