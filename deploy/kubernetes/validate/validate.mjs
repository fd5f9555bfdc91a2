// Validates every object of a rendered manifest (kubectl kustomize output) against the Kubernetes schemas of
// kubernetes-models. Fails closed: an unknown apiVersion or kind is an error too.
// Usage: node validate.mjs <rendered.yaml>
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const file = process.argv[2];
const documents = parseAllDocuments(readFileSync(file, "utf8"));
let objects = 0;
const problems = [];
for (const document of documents) {
  if (document.errors.length > 0) {
    problems.push(`YAML: ${document.errors.map((e) => e.message).join("; ")}`);
    continue;
  }

  const object = document.toJS();
  if (object === null) {
    continue;
  }

  objects++;
  const name = `${object.kind ?? "?"} ${object.metadata?.name ?? "?"}`;
  let module;
  try {
    module = await import(`kubernetes-models/${object.apiVersion}`);
  } catch {
    problems.push(`${name}: unknown apiVersion '${object.apiVersion}'`);
    continue;
  }

  const Model = module[object.kind];
  if (typeof Model !== "function") {
    problems.push(`${name}: unknown kind '${object.kind}' in ${object.apiVersion}`);
    continue;
  }

  try {
    new Model(object).validate();
  } catch (error) {
    problems.push(`${name}: ${error.message}`);
  }
}

for (const problem of problems) {
  console.error(problem);
}

console.log(`${file}: ${objects} objects, ${problems.length} invalid`);
process.exit(problems.length === 0 && objects > 0 ? 0 : 1);
