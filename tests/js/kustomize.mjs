// The part of `kustomize build` that deploy/kubernetes uses, so that the test
// sees the manifests a cluster would get without kubectl: resources (files and
// other kustomizations), labels (with selectors), images, and patches (RFC 6902
// JSON patches or strategic-merge patches of whole objects, each with a target).
// Anything else in a kustomization is an error here, so that the test cannot
// pass on a file it did not understand.
import fs from "node:fs";
import path from "node:path";
import YAML from "yaml";

const kKnownKeys = new Set(["apiVersion", "kind", "resources", "labels", "images", "patches"]);

function readDocs(file) {
  return YAML.parseAllDocuments(fs.readFileSync(file, "utf8")).map((d) => {
    if (d.errors.length) throw new Error(`${file}: ${d.errors[0].message}`);
    return d.toJS();
  }).filter((d) => d !== null);
}

function pointer(p) {
  if (!p.startsWith("/")) throw new Error(`JSON patch path '${p}' does not start with /`);
  return p.slice(1).split("/").map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function applyJsonPatch(doc, ops, from) {
  for (const op of ops) {
    const parts = pointer(op.path);
    const last = parts.pop();
    let parent = doc;
    for (const k of parts) {
      if (parent === null || typeof parent !== "object" || !(k in parent))
        throw new Error(`${from}: ${op.op} ${op.path}: '${k}' does not exist`);
      parent = parent[k];
    }
    const isArray = Array.isArray(parent);
    const index = last === "-" ? parent.length : Number(last);
    if (op.op === "add") {
      if (isArray) parent.splice(index, 0, op.value);
      else parent[last] = op.value;
    } else if (op.op === "replace" || op.op === "remove") {
      if (isArray ? !(index >= 0 && index < parent.length) : !(last in parent))
        throw new Error(`${from}: ${op.op} ${op.path}: nothing there`);
      if (op.op === "remove") isArray ? parent.splice(index, 1) : delete parent[last];
      else if (isArray) parent[index] = op.value;
      else parent[last] = op.value;
    } else {
      throw new Error(`${from}: JSON patch op '${op.op}' is not supported here`);
    }
  }
}

// Strategic merge, for the cases a patch here needs: maps merge, lists of
// named objects (containers, volumes, env) merge by name, other lists replace.
function strategicMerge(base, patch) {
  if (Array.isArray(patch)) {
    if (!Array.isArray(base) || !patch.every((p) => p && typeof p === "object" && "name" in p)) return patch;
    const out = base.slice();
    for (const p of patch) {
      const i = out.findIndex((b) => b.name === p.name);
      if (i >= 0) out[i] = strategicMerge(out[i], p);
      else out.push(p);
    }
    return out;
  }
  if (patch && typeof patch === "object") {
    const out = base && typeof base === "object" && !Array.isArray(base) ? { ...base } : {};
    for (const [k, v] of Object.entries(patch)) out[k] = v === null ? undefined : strategicMerge(out[k], v);
    for (const k of Object.keys(out)) if (out[k] === undefined) delete out[k];
    return out;
  }
  return patch;
}

function setLabels(doc, pairs, includeSelectors) {
  const add = (obj) => Object.assign(obj, pairs);
  doc.metadata ??= {};
  add((doc.metadata.labels ??= {}));
  if (!includeSelectors) return;
  const spec = doc.spec ?? {};
  if (doc.kind === "Deployment" || doc.kind === "StatefulSet" || doc.kind === "DaemonSet") {
    add(((spec.selector ??= {}).matchLabels ??= {}));
    add(((spec.template.metadata ??= {}).labels ??= {}));
  } else if (doc.kind === "Service") {
    add((spec.selector ??= {}));
  } else if (doc.kind === "PodDisruptionBudget") {
    add(((spec.selector ??= {}).matchLabels ??= {}));
  }
}

function setImages(doc, images) {
  const containers = [...(doc.spec?.template?.spec?.containers ?? []), ...(doc.spec?.template?.spec?.initContainers ?? [])];
  for (const c of containers)
    for (const img of images) {
      const name = c.image.replace(/[:@].*$/, "");
      if (name !== img.name) continue;
      c.image = (img.newName ?? img.name) + (img.digest ? `@${img.digest}` : img.newTag ? `:${img.newTag}` : "");
    }
}

const matches = (doc, target) =>
  (!target.kind || doc.kind === target.kind) && (!target.name || doc.metadata?.name === target.name);

// The objects `kustomize build DIR` gives, in order.
export function build(dir) {
  const file = path.join(dir, "kustomization.yaml");
  const k = readDocs(file)[0];
  for (const key of Object.keys(k)) if (!kKnownKeys.has(key)) throw new Error(`${file}: '${key}' is not understood by this test`);
  const docs = [];
  for (const r of k.resources ?? []) {
    const p = path.join(dir, r);
    if (!fs.existsSync(p)) throw new Error(`${file}: resource ${r} does not exist`);
    docs.push(...(fs.statSync(p).isDirectory() ? build(p) : readDocs(p)));
  }
  for (const l of k.labels ?? []) for (const d of docs) setLabels(d, l.pairs, l.includeSelectors);
  if (k.images) for (const d of docs) setImages(d, k.images);
  for (const p of k.patches ?? []) {
    const text = p.patch ?? fs.readFileSync(path.join(dir, p.path), "utf8");
    const parsed = YAML.parse(text);
    const targets = docs.filter((d) => matches(d, p.target ?? { kind: parsed.kind, name: parsed.metadata?.name }));
    if (targets.length === 0) throw new Error(`${file}: patch ${p.path ?? "(inline)"} matches nothing`);
    for (const t of targets) {
      if (Array.isArray(parsed)) applyJsonPatch(t, parsed, p.path ?? "inline patch");
      else Object.assign(t, strategicMerge(t, parsed));
    }
  }
  return docs;
}
