// Offline validation of Kubernetes manifests against the API's own types, with
// no cluster and no kubectl. kubernetes-models' validators check types, enums
// and required fields but let unknown fields through, which is how a typo such
// as `readinesProbe` or `httpGet.paht` slips past; so the field lists are read
// from the package's type declarations (one interface per API type) and every
// field of a manifest must be one of them.
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const modelsRoot = path.dirname(require.resolve("kubernetes-models/package.json"));
const machineryRoot = path.dirname(require.resolve("@kubernetes-models/apimachinery/package.json"));

function* declarationFiles(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === "node_modules" || e.name.startsWith("_")) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* declarationFiles(p);
    else if (e.name.endsWith(".d.ts")) yield p;
  }
}

// Interface name (the long, global one such as IIoK8sApiCoreV1Probe) -> Map of
// field name -> type text.
const interfaces = new Map();
function parseDeclarations(file) {
  const text = fs.readFileSync(file, "utf8").replace(/\/\*\*[\s\S]*?\*\//g, "").replace(/^[ \t]*\n/gm, "");
  const local = new Map();
  for (const m of text.matchAll(/^export interface (\w+)(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/gm)) {
    const fields = new Map();
    // A field is `    "name"?: TYPE;` where TYPE may be an object spanning lines.
    for (const f of m[2].matchAll(/^ {4}"([^"]+)"\??: ([\s\S]*?);\n(?= {4}"|$)/gm)) fields.set(f[1], f[2].replace(/\s+/g, " "));
    local.set(m[1], fields);
  }
  for (const m of text.matchAll(/^export type \{([^}]*)\}/gm))
    for (const pair of m[1].split(",")) {
      const [from, as] = pair.trim().split(/\s+as\s+/);
      if (as && local.has(from)) interfaces.set(as, local.get(from));
    }
}
for (const root of [modelsRoot, machineryRoot]) for (const f of declarationFiles(root)) parseDeclarations(f);

// The interface of a top-level object, from its apiVersion and kind.
function rootType(apiVersion, kind) {
  const file = path.join(modelsRoot, apiVersion, `${kind}.d.ts`);
  if (!fs.existsSync(file)) return null;
  const m = fs.readFileSync(file, "utf8").match(new RegExp(`I${kind} as (\\w+)`));
  return m ? m[1] : null;
}

function strictFields(value, type, where, errors) {
  type = type.trim();
  let m;
  if ((m = type.match(/^Array<(.*)>$/))) {
    if (Array.isArray(value)) value.forEach((v, i) => strictFields(v, m[1], `${where}[${i}]`, errors));
    return;
  }
  if ((m = type.match(/^\{ \[key: string\]: (.*); \}$/))) {
    if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) strictFields(v, m[1], `${where}.${k}`, errors);
    return;
  }
  const fields = interfaces.get(type);
  if (!fields || value === null || typeof value !== "object" || Array.isArray(value)) return;  // a scalar or free-form JSON
  for (const [k, v] of Object.entries(value)) {
    if (!fields.has(k)) errors.push(`${where}.${k}: ${type.replace(/^IIoK8s(Api|ApimachineryPkgApis)/, "")} has no field "${k}"`);
    else strictFields(v, fields.get(k), `${where}.${k}`, errors);
  }
}

// Every problem with one manifest, as readable lines: an unknown kind, the
// schema validator's errors, and fields the type does not have.
export async function validateManifest(doc) {
  const { apiVersion, kind } = doc ?? {};
  const where = `${kind ?? "?"}/${doc?.metadata?.name ?? "?"}`;
  const type = typeof apiVersion === "string" && typeof kind === "string" ? rootType(apiVersion, kind) : null;
  if (!type) return [`${where}: unknown apiVersion/kind ${apiVersion}/${kind}`];
  const errors = [];
  const module = await import(`kubernetes-models/${apiVersion}/${kind}`);
  try {
    new module[kind](doc).validate();
  } catch (e) {
    errors.push(`${where}: ${e.message}`);
  }
  strictFields(doc, type, where, errors);
  return errors;
}

export const knownTypeCount = () => interfaces.size;
