// Three `osprey serve` replicas behind HAProxy with deploy/haproxy/haproxy.cfg,
// all on loopback: prefix affinity, load spread, drain on SIGTERM, failover
// on SIGKILL, and one replica's throughput against three.
// Usage: node scale_out_test.mjs OSPREY_BINARY WORKDIR
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const config = path.resolve(here, "../../deploy/haproxy/haproxy.cfg");
const [osprey, workdir] = process.argv.slice(2);

function haproxyBinary() {
  for (const dir of (process.env.PATH ?? "").split(":").concat(["/usr/sbin", "/sbin"])) {
    const p = path.join(dir, "haproxy");
    if (fs.existsSync(p)) return p;
  }
  return null;
}
const haproxy = haproxyBinary();
if (!haproxy) {
  console.log("SKIP: haproxy is not installed (scripts/setup.sh installs Debian's haproxy)");
  process.exit(77);
}

fs.mkdirSync(workdir, { recursive: true });
// A model big enough that a stream lasts seconds on one core: SmolLM2-135M's shape.
const model = path.join(workdir, "smollm2-135m-q8_0.gguf");
if (!fs.existsSync(model)) execFileSync(osprey, ["synth", "--preset", "smollm2-135m", "--type", "q8_0", "-o", model]);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
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

async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function waitFor(what, predicate, timeoutMs = 30000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await predicate().catch(() => false)) return;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A replica: `osprey serve` on a fixed port, so that it can be started again
// there. Its --alias names it in every reply's "model" field, which is how
// the test sees where the proxy sent a request.
const replicas = [];
async function startReplica(r) {
  r.log = "";
  r.proc = spawn(osprey, ["serve", "-m", model, "--port", String(r.port), "--alias", r.name, "-P", "8", "-c", "512",
                          "-t", "1", "--shutdown-delay", "2", "--drain-timeout", "60"], { stdio: ["ignore", "ignore", "pipe"] });
  r.proc.stderr.on("data", (d) => (r.log += d));
  r.exited = new Promise((resolve) => r.proc.on("exit", (code, signal) => resolve({ code, signal })));
  await waitFor(`${r.name} to be ready`, async () => (await fetch(`http://127.0.0.1:${r.port}/ready`)).status === 200, 60000);
}
async function metric(r, name) {
  const text = await (await fetch(`http://127.0.0.1:${r.port}/metrics`)).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
  return m ? Number(m[1]) : NaN;
}

for (const name of ["r1", "r2", "r3"]) replicas.push({ name, port: await freePort() });
await Promise.all(replicas.map(startReplica));

const proxyPort = await freePort(), statsPort = await freePort();
const proxyLog = [];
const proxy = spawn(haproxy, ["-db", "-f", config], {
  stdio: ["ignore", "ignore", "pipe"],
  env: {
    ...process.env,
    OSPREY_LISTEN: `127.0.0.1:${proxyPort}`,
    OSPREY_STATS_LISTEN: `127.0.0.1:${statsPort}`,
    OSPREY_REPLICA_1: `127.0.0.1:${replicas[0].port}`,
    OSPREY_REPLICA_2: `127.0.0.1:${replicas[1].port}`,
    OSPREY_REPLICA_3: `127.0.0.1:${replicas[2].port}`,
  },
});
proxy.stderr.on("data", (d) => proxyLog.push(String(d)));
const base = `http://127.0.0.1:${proxyPort}`;

// HAProxy's view of each replica (UP, DOWN, ...), from its CSV stats.
async function serverStates() {
  const csv = await (await fetch(`http://127.0.0.1:${statsPort}/stats;csv`)).text();
  const states = {};
  for (const line of csv.split("\n")) {
    const f = line.split(",");
    if (f[0] === "replicas" && /^r\d$/.test(f[1])) states[f[1]] = f[17];
  }
  return states;
}
await waitFor("HAProxy to see three replicas up", async () => {
  const s = await serverStates();
  return ["r1", "r2", "r3"].every((n) => s[n] === "UP");
});

// One streamed completion through the proxy. Resolves (never rejects) with
// where it ran, how many tokens came, whether it ended with [DONE], and the
// error a failed one gave. `started` resolves at the first chunk.
function stream(prompt, { maxTokens = 96, headers = {}, onFirst } = {}) {
  return (async () => {
    const out = { replica: null, tokens: 0, done: false, error: null, status: 0, key: null };
    try {
      const res = await fetch(base + "/v1/completions", {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body: JSON.stringify({ prompt, max_tokens: maxTokens, ignore_eos: true, stream: true, temperature: 0.7, seed: 1,
                               stream_options: { include_usage: true } }),
      });
      out.status = res.status;
      out.key = res.headers.get("x-osprey-prefix-key");
      if (res.status !== 200) {
        out.error = `HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`;
        return out;
      }
      const decoder = new TextDecoder();
      let buffered = "";
      for await (const chunk of res.body) {
        buffered += decoder.decode(chunk, { stream: true });
        let cut;
        while ((cut = buffered.indexOf("\n\n")) >= 0) {
          const event = buffered.slice(0, cut).replace(/^data: /, "");
          buffered = buffered.slice(cut + 2);
          if (event === "[DONE]") {
            out.done = true;
            continue;
          }
          const j = JSON.parse(event);
          if (j.error) throw new Error(j.error.message);
          if (!out.replica) {
            out.replica = j.model;
            onFirst?.(out);
          }
          // Chunks are not tokens (a chunk waits for a whole UTF-8 character),
          // so the count comes from the closing usage chunk.
          if (j.usage) out.tokens = j.usage.completion_tokens;
        }
      }
      if (!out.done) out.error = "the stream ended without [DONE]";
    } catch (e) {
      out.error = String(e.cause?.code ?? e.cause?.message ?? e.message ?? e);
    }
    return out;
  })();
}

async function complete(messages, headers = {}) {
  const res = await fetch(base + "/v1/chat/completions", {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify({ messages, max_tokens: 8, temperature: 0 }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return { replica: body.model, key: res.headers.get("x-osprey-prefix-key") };
}

const counts = (results) => {
  const c = {};
  for (const r of results) if (r.replica) c[r.replica] = (c[r.replica] ?? 0) + 1;
  return c;
};
const summary = (results) =>
  `${results.length} sent, ${results.filter((r) => r.done).length} completed, ${results.filter((r) => !r.done).length} failed`;

await check("affinity: a shared system prompt lands on one replica, which reuses its prefix", async () => {
  const system = "You are the support assistant of a company that sells sailing boats. " +
    "Answer in two sentences, cite the manual's section, and never guess a price. ".repeat(6);
  const questions = ["How do I reef the mainsail?", "What is the draft?", "Where is the bilge pump?",
                     "How often should I service the winches?", "Can I sail single-handed?", "What anchor fits?"];
  const where = [];
  for (const q of questions) where.push(await complete([{ role: "system", content: system }, { role: "user", content: q }]));
  const home = where[0].replica;
  assert.ok(where.every((w) => w.replica === home), `went to ${where.map((w) => w.replica).join(", ")}`);
  const r = replicas.find((x) => x.name === home);
  const hits = await metric(r, "osprey_prefix_cache_hit_tokens_total");
  assert.ok(hits > 0, `no prefix-cache hits on ${home}`);
  console.log(`     6 requests sharing a ${system.length}-character system prompt all went to ${home}; ` +
              `its prefix cache served ${hits} prompt tokens (hit ratio ${await metric(r, "osprey_prefix_cache_hit_ratio")})`);
  // The key osprey answered with carries the affinity by itself: a request
  // with a different body but that header goes to the same replica.
  assert.match(where[0].key ?? "", /^p[0-9a-f]{16}$/);
  for (let i = 0; i < 3; i++) {
    const other = await complete([{ role: "user", content: `unrelated question ${i}` }], { "x-osprey-prefix-key": where[0].key });
    assert.equal(other.replica, home);
    assert.equal(other.key, where[0].key, "a client's key is echoed back");
  }
  // A client's own session key sticks too.
  const first = await complete([{ role: "user", content: "session start" }], { "x-osprey-prefix-key": "session-7" });
  for (let i = 0; i < 3; i++)
    assert.equal((await complete([{ role: "user", content: `turn ${i}` }], { "x-osprey-prefix-key": "session-7" })).replica, first.replica);
});

await check("load spread: 24 concurrent streams use all three replicas", async () => {
  const results = await Promise.all(Array.from({ length: 24 }, (_, i) => stream(`Stream ${i}: tell a story about the number ${i * 7919}.`)));
  const c = counts(results);
  console.log(`     ${summary(results)}; per replica ${JSON.stringify(c)}`);
  assert.ok(results.every((r) => r.done && r.tokens === 96), results.find((r) => !r.done)?.error);
  for (const n of ["r1", "r2", "r3"]) assert.ok((c[n] ?? 0) >= 4, `${n} got ${c[n] ?? 0} of 24`);
});

await check("throughput: one replica alone against three behind the proxy", async () => {
  // On 2 cores three replicas share the same compute, so this shows that the
  // proxy adds no loss, not that it scales.
  const run = async (url) => {
    const t0 = Date.now();
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) =>
      fetch(url + "/v1/completions", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: `Throughput ${i}`, max_tokens: 64, ignore_eos: true }),
      }).then((r) => r.json())));
    const tokens = results.reduce((s, r) => s + (r.usage?.completion_tokens ?? 0), 0);
    assert.equal(tokens, 24 * 64);
    return tokens / ((Date.now() - t0) / 1000);
  };
  const one = await run(`http://127.0.0.1:${replicas[0].port}`);
  const three = await run(base);
  console.log(`     24 requests x 64 tokens: one replica ${one.toFixed(0)} tokens/s, ` +
              `three behind HAProxy ${three.toFixed(0)} tokens/s (${(three / one).toFixed(2)}x, on ${(await import("node:os")).cpus().length} cores)`);
});

await check("drain: SIGTERM mid-load finishes every stream, and new requests go elsewhere", async () => {
  const victim = replicas[1];
  let onVictim = 0;
  const started = [];
  const results = Array.from({ length: 24 }, (_, i) =>
    stream(`Drain ${i}: describe the harbour at dawn, stone by stone.`, {
      maxTokens: 160,
      onFirst: (o) => {
        started.push(o);
        if (o.replica === victim.name) onVictim++;
      },
    }));
  await waitFor("every stream to start", async () => started.length === 24, 60000);
  assert.ok(onVictim > 0, "no stream ran on the replica to be drained");
  victim.proc.kill("SIGTERM");
  await waitFor("HAProxy to take the draining replica out", async () => (await serverStates())[victim.name] !== "UP", 10000);
  const later = await Promise.all(Array.from({ length: 12 }, (_, i) => stream(`After ${i}`, { maxTokens: 16 })));
  const all = await Promise.all(results);
  const exit = await victim.exited;
  console.log(`     ${onVictim} of 24 streams were on ${victim.name} at SIGTERM; running: ${summary(all)}; ` +
              `sent during the drain: ${summary(later)}, per replica ${JSON.stringify(counts(later))}; ${victim.name} exited with ${exit.code}`);
  assert.ok(all.every((r) => r.done && r.tokens === 160), all.find((r) => !r.done)?.error);
  assert.ok(later.every((r) => r.done), later.find((r) => !r.done)?.error);
  assert.ok(later.every((r) => r.replica !== victim.name), "a new request reached the draining replica");
  assert.equal(exit.code, 0, victim.log);
  assert.match(victim.log, /draining/);
  // Back to three.
  await startReplica(victim);
  await waitFor("HAProxy to see the replica back", async () => (await serverStates())[victim.name] === "UP", 15000);
});

await check("kill: SIGKILL fails only the streams that replica held, each with an error", async () => {
  const victim = replicas[2];
  const started = [];
  const results = Array.from({ length: 24 }, (_, i) =>
    stream(`Kill ${i}: list the lighthouses of the coast, north to south.`, { maxTokens: 160, onFirst: (o) => started.push(o) }));
  await waitFor("every stream to start", async () => started.length === 24, 60000);
  const held = started.filter((o) => o.replica === victim.name).length;
  assert.ok(held > 0, "no stream ran on the replica to be killed");
  victim.proc.kill("SIGKILL");
  const all = await Promise.all(results);
  const failed = all.filter((r) => !r.done);
  // New requests right after: HAProxy retries a refused connection on another replica.
  const later = await Promise.all(Array.from({ length: 12 }, (_, i) => stream(`After kill ${i}`, { maxTokens: 16 })));
  console.log(`     ${held} of 24 streams were on ${victim.name} at SIGKILL; ${summary(all)} ` +
              `(errors: ${[...new Set(failed.map((r) => r.error))].join("; ")}); sent after: ${summary(later)}`);
  // A stream the victim had already finished before the signal completes, so
  // the failures are some of the streams it held, and only those.
  assert.ok(failed.length > 0 && failed.length <= held, `${failed.length} failed, ${held} held`);
  assert.ok(failed.every((r) => r.replica === victim.name && r.error), "a failed stream was not the killed replica's");
  assert.ok(all.filter((r) => r.replica !== victim.name).every((r) => r.done && r.tokens === 160));
  assert.ok(later.every((r) => r.done && r.replica !== victim.name), later.find((r) => !r.done)?.error);
});

proxy.kill("SIGTERM");
for (const r of replicas) if (r.proc.exitCode === null && r.proc.signalCode === null) r.proc.kill("SIGKILL");
if (failures > 0) {
  console.log("HAProxy log (last lines):\n" + proxyLog.join("").split("\n").slice(-20).join("\n"));
  for (const r of replicas) console.log(`--- ${r.name} log (last lines):\n` + r.log.split("\n").slice(-10).join("\n"));
}
console.log(`${failures === 0 ? "all passed" : failures + " failed"}`);
process.exit(failures === 0 ? 0 : 1);
