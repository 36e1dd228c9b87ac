// Reads a JSON array of custom resources on stdin (KEDA's, prometheus-operator's) and validates
// each against its CRD schema (kubernetes-models, generated from the projects' CRDs). Prints one
// line per object; exits 1 if any fails.
import { ScaledObject, TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1";
import { PodMonitor, PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1";

const kinds = {
  "keda.sh/v1alpha1": { ScaledObject, TriggerAuthentication },
  "monitoring.coreos.com/v1": { PodMonitor, PrometheusRule },
};
let input = "";
for await (const chunk of process.stdin) input += chunk;
let failed = 0;
for (const doc of JSON.parse(input)) {
  const Model = kinds[doc.apiVersion]?.[doc.kind];
  const name = `${doc.kind}/${doc.metadata?.name}`;
  if (!Model) {
    console.log(`FAIL ${name}: not a kind this validator knows (${doc.apiVersion})`);
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
