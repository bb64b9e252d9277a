// deploy/kubernetes, checked offline: the base and the CPU overlay are built
// the way kustomize builds them, every object is validated against the
// Kubernetes API types (unknown fields included), and what the objects say
// about osprey is checked against osprey itself: the flags exist, the probes
// name real endpoints, the grace period outlasts the drain, the autoscaler's
// metric is one /metrics serves, and the overlay's memory covers both
// `osprey inspect`'s estimate and what a replica really uses under load.
// Usage: node deploy_manifests_test.mjs OSPREY_BINARY WORKDIR
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { build } from "./kustomize.mjs";
import { validateManifest } from "./k8s_schema.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const deploy = path.resolve(here, "../../deploy");
const [osprey, workdir] = process.argv.slice(2);
fs.mkdirSync(workdir, { recursive: true });

let failures = 0;
async function check(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    console.log(`ok   ${name} (${Date.now() - t0} ms)`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack ?? e}`);
  }
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Kubernetes quantities: "3Gi" -> bytes, "500m" -> 0.5.
function quantity(q) {
  const m = String(q).match(/^([0-9.]+)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/);
  assert.ok(m, `'${q}' is not a quantity`);
  const scale = { m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40 };
  return Number(m[1]) * (m[2] ? scale[m[2]] : 1);
}
// "2.34 GiB" as osprey prints sizes -> bytes.
function humanBytes(text) {
  const m = text.match(/([0-9.]+) (B|KiB|MiB|GiB|TiB)/);
  return Number(m[1]) * { B: 1, KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 }[m[2]];
}

// `--name=value` / `--flag` arguments as a map.
function flags(args) {
  const out = new Map();
  for (const a of args) {
    const m = a.match(/^(--[a-z0-9-]+)(?:=(.*))?$/);
    assert.ok(m, `argument '${a}' is not --name or --name=value`);
    out.set(m[1], m[2] ?? true);
  }
  return out;
}

const containerfile = fs.readFileSync(path.join(deploy, "Containerfile"), "utf8");
const imagePort = Number(containerfile.match(/^EXPOSE (\d+)/m)[1]);
const imageUser = Number(containerfile.match(/^USER (\d+)/m)[1]);
const serveHelp = execFileSync(osprey, ["serve", "--help"], { encoding: "utf8" });

const builds = {
  base: build(path.join(deploy, "kubernetes/base")),
  cpu: build(path.join(deploy, "kubernetes/overlays/cpu")),
};
const only = (docs, kind) => {
  const found = docs.filter((d) => d.kind === kind);
  assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0];
};
const subset = (small, big) => Object.entries(small ?? {}).every(([k, v]) => big?.[k] === v);

await check("the validator catches unknown fields, wrong types and unknown kinds", async () => {
  const d = structuredClone(only(builds.base, "Deployment"));
  d.spec.template.spec.containers[0].readinesProbe = { httpGet: { path: "/ready", port: 8080 } };
  d.spec.template.spec.containers[0].livenessProbe.httpGet.paht = "/health";
  d.spec.replicas = "two";
  const errors = await validateManifest(d);
  for (const what of [/no field "readinesProbe"/, /no field "paht"/, /replicas must be integer/])
    assert.ok(errors.some((e) => what.test(e)), `missed ${what}: ${errors.join("; ")}`);
  assert.equal((await validateManifest({ apiVersion: "apps/v1", kind: "Deploymnet" })).length, 1);
});

for (const [name, docs] of Object.entries(builds)) {
  await check(`${name}: every object is valid against the Kubernetes API types`, async () => {
    const kinds = docs.map((d) => d.kind).sort();
    assert.deepEqual(kinds, ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "PersistentVolumeClaim",
                             "PodDisruptionBudget", "Service"]);
    const errors = (await Promise.all(docs.map(validateManifest))).flat();
    assert.deepEqual(errors, []);
  });

  await check(`${name}: the Deployment runs osprey the way the image and the server expect`, async () => {
    const dep = only(docs, "Deployment");
    const pod = dep.spec.template;
    const [c] = pod.spec.containers;
    assert.match(c.image, /:[^/]+$/, "the image has a tag");
    assert.doesNotMatch(c.image, /:latest$/, "a pinned tag, not :latest");
    // Every argument is a flag `osprey serve` has.
    const f = flags(c.args);
    for (const flag of f.keys()) assert.ok(serveHelp.includes(flag), `osprey serve has no ${flag}`);
    assert.match(String(f.get("--model")), /^\/models\/.+/, "the model comes from the models volume");
    // Ports, probes and user agree with the image.
    const port = c.ports.find((p) => p.name === "http");
    assert.equal(port.containerPort, imagePort);
    assert.equal(c.readinessProbe.httpGet.path, "/ready");
    assert.equal(c.livenessProbe.httpGet.path, "/health");
    assert.equal(c.startupProbe.httpGet.path, "/health");
    for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) assert.equal(probe.httpGet.port, "http");
    assert.equal(pod.spec.securityContext.runAsUser, imageUser);
    assert.equal(pod.metadata.annotations["prometheus.io/port"], String(imagePort));
    assert.equal(pod.metadata.annotations["prometheus.io/path"], "/metrics");
    assert.ok(f.has("--public-metrics"), "Prometheus cannot send the API key, so /metrics must be open");
    // The API key from a Secret, never inline.
    const key = c.env.find((e) => e.name === "OSPREY_API_KEY");
    assert.ok(key?.valueFrom?.secretKeyRef?.name && key.value === undefined);
    // Shutdown: the grace period outlasts preStop + shutdown delay + drain.
    const drain = c.lifecycle.preStop.sleep.seconds + Number(f.get("--shutdown-delay") ?? 0) +
                  Number(f.get("--drain-timeout") ?? 60);
    assert.ok(pod.spec.terminationGracePeriodSeconds > drain,
              `terminationGracePeriodSeconds ${pod.spec.terminationGracePeriodSeconds} <= ${drain} s of drain`);
    // The models volume is the claim this kustomization makes, mounted read-only.
    const pvc = only(docs, "PersistentVolumeClaim");
    const volume = pod.spec.volumes.find((v) => v.persistentVolumeClaim);
    assert.equal(volume.persistentVolumeClaim.claimName, pvc.metadata.name);
    const mount = c.volumeMounts.find((m) => m.name === volume.name);
    assert.equal(mount.mountPath, "/models");
    assert.equal(mount.readOnly, true);
    // Selectors pick these pods.
    assert.ok(subset(dep.spec.selector.matchLabels, pod.metadata.labels));
    assert.ok(subset(only(docs, "Service").spec.selector, pod.metadata.labels));
    assert.ok(subset(only(docs, "PodDisruptionBudget").spec.selector.matchLabels, pod.metadata.labels));
    assert.equal(only(docs, "Service").spec.ports[0].targetPort, "http");
    // Resources: set, and limits not below requests.
    for (const r of ["cpu", "memory"])
      assert.ok(quantity(c.resources.limits[r]) >= quantity(c.resources.requests[r]), `${r} limit below request`);
  });
}

await check("the autoscaler's metric is one osprey serves, through the adapter's rules", async () => {
  const docs = builds.cpu;
  const hpa = only(docs, "HorizontalPodAutoscaler");
  const dep = only(docs, "Deployment");
  assert.equal(hpa.spec.scaleTargetRef.kind, "Deployment");
  assert.equal(hpa.spec.scaleTargetRef.name, dep.metadata.name);
  assert.ok(hpa.spec.minReplicas >= 2, "one replica alone cannot drain without an outage");
  const rules = YAML.parse(only(docs, "ConfigMap").data["config.yaml"]).rules;
  const served = new Set(rules.map((r) => r.name.as));
  for (const m of hpa.spec.metrics) assert.ok(served.has(m.pods.metric.name), `no adapter rule serves ${m.pods.metric.name}`);
  // Each rule reads a series a live osprey exports, under that exact name.
  const model = path.join(workdir, "tiny.gguf");
  if (!fs.existsSync(model)) execFileSync(osprey, ["synth", "--preset", "tiny", "-o", model]);
  const port = await freePort();
  const proc = spawn(osprey, ["serve", "-m", model, "--port", String(port), "--api-key", "k", "--public-metrics"],
                     { stdio: "ignore" });
  try {
    let text = "";
    for (let i = 0; i < 100 && !text; i++) {
      text = await fetch(`http://127.0.0.1:${port}/metrics`).then((r) => (r.ok ? r.text() : ""), () => "");
      if (!text) await sleep(100);
    }
    for (const r of rules) {
      const series = r.seriesQuery.match(/^'?([a-z_:]+)\{/)[1];
      assert.match(text, new RegExp(`^${series} `, "m"), `osprey's /metrics has no ${series}`);
      assert.match(r.name.matches, new RegExp(series));
      assert.match(r.metricsQuery, /<<\.Series>>\{<<\.LabelMatchers>>\}/);
    }
  } finally {
    proc.kill("SIGKILL");
  }
});

// POST a JSON body and parse the JSON reply, with no time limit of its own
// (ctest's timeout bounds the test).
function postJson(port, route, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: route, method: "POST",
                               headers: { "content-type": "application/json", authorization: "Bearer k" } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => { try { resolve(JSON.parse(text)); } catch (e) { reject(new Error(`${res.statusCode}: ${text.slice(0, 300)}`)); } });
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}

await check("cpu overlay: memory covers `osprey inspect`'s estimate and a replica's real peak", async () => {
  const dep = only(builds.cpu, "Deployment");
  const [c] = dep.spec.template.spec.containers;
  const f = flags(c.args);
  // The overlay's model, made here in the same shape as the real file.
  const file = path.basename(String(f.get("--model")));
  assert.equal(file, "qwen3-0.6b-q8_0.gguf", "this check knows how to make the overlay's model; update both together");
  const model = path.join(workdir, file);
  if (!fs.existsSync(model)) execFileSync(osprey, ["synth", "--preset", "qwen3-0.6b", "--type", "q8_0", "-o", model], { stdio: "ignore" });
  const parallel = Number(f.get("--parallel")), ctx = Number(f.get("--ctx-size"));
  assert.ok(parallel > 0 && ctx > 0, "the overlay sets --parallel and --ctx-size, which size its KV pool");
  const inspect = execFileSync(osprey, ["inspect", model, "-c", String(parallel * ctx), "--no-tensors"], { encoding: "utf8" });
  const estimate = humanBytes(inspect.match(/^memory: +(.*)$/m)[1]);
  const limit = quantity(c.resources.limits.memory);
  assert.equal(c.resources.requests.memory, c.resources.limits.memory, "memory requested is memory allowed");
  assert.equal(c.resources.requests.cpu, c.resources.limits.cpu, "whole cores, requested as limited");
  assert.equal(Number(f.get("--threads")), quantity(c.resources.limits.cpu), "one compute thread per core");
  assert.ok(limit >= estimate * 1.1, `limit ${limit} leaves under 10% over the estimate ${estimate}`);
  // The replica itself, with the overlay's arguments, every slot busy with a
  // near-full context: its peak resident memory stays under the limit.
  const port = await freePort();
  // The overlay's arguments, with the model made here and no more threads
  // than this machine has cores (more would only slow the fill down).
  const cores = (await import("node:os")).cpus().length;
  const args = c.args.map((a) => (a.startsWith("--model=") ? `--model=${model}`
                                  : a.startsWith("--threads=") ? `--threads=${Math.min(cores, Number(f.get("--threads")))}` : a));
  const proc = spawn(osprey, ["serve", ...args, "--host", "127.0.0.1", "--port", String(port)], {
    stdio: ["ignore", "ignore", "pipe"],
    env: { ...process.env, OSPREY_API_KEY: "k" },
  });
  let log = "";
  proc.stderr.on("data", (d) => (log += d));
  try {
    for (let i = 0; i < 600; i++) {
      if ((await fetch(`http://127.0.0.1:${port}/ready`).then((r) => r.status, () => 0)) === 200) break;
      await sleep(100);
    }
    // Token ids, so that the prompt fills the context exactly.
    const prompt = (i) => Array.from({ length: ctx - 64 }, (_, j) => 1000 + ((i * 7919 + j * 31) % 50000));
    // node:http rather than fetch: filling four 4096-token contexts on two
    // busy cores can take longer than fetch's fixed 300 s wait for headers.
    const replies = await Promise.all(Array.from({ length: parallel }, (_, i) =>
      postJson(port, "/v1/completions", { prompt: prompt(i), max_tokens: 8, ignore_eos: true })));
    for (const r of replies) assert.equal(r.usage?.completion_tokens, 8, JSON.stringify(r).slice(0, 300));
    const used = replies.reduce((s, r) => s + r.usage.prompt_tokens + 8, 0);
    const peak = Number(fs.readFileSync(`/proc/${proc.pid}/status`, "utf8").match(/^VmHWM:\s+(\d+) kB/m)[1]) * 1024;
    console.log(`     estimate ${(estimate / 2 ** 30).toFixed(2)} GiB, peak ${(peak / 2 ** 30).toFixed(2)} GiB ` +
                `with ${used} tokens in the KV pool, limit ${c.resources.limits.memory}`);
    assert.ok(used > parallel * ctx * 0.8, `only ${used} of ${parallel * ctx} positions used`);
    assert.ok(peak < limit, `peak ${peak} over the limit ${limit}`);
  } finally {
    proc.kill("SIGKILL");
    if (failures) console.log(log);
  }
});

console.log(failures === 0 ? "all deploy checks passed" : `${failures} deploy check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
