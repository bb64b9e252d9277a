// The soak test of `osprey serve`: 16 clients, each looping until the time is
// up over a random mix of streams read to the end, streams dropped after a few
// chunks, requests abandoned before or after the first byte, non-streaming
// requests cancelled midway, n > 1, and hostile requests (malformed JSON,
// wrong types, nesting past the limit, invalid UTF-8, a body over the limit,
// a trickled header, a half-sent request, garbage, pipelining, a chunked
// body, a context overflow). A seeded request is repeated throughout and must
// return its reference text every time. At the end the running sequences,
// the queue and the KV blocks in use are back to zero, the open connections
// to the scraper's own, and resident memory within a bound of the baseline
// taken after a warm-up of the same mix.
// Usage: node soak_test.mjs OSPREY_BINARY WORKDIR [--seconds N] [--seed S]
// (OSPREY_SOAK_SECONDS sets the default length: 60 s, 20 s under the sanitizers.)
import { execFileSync } from "node:child_process";
import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import { startServer as startOsprey } from "./osprey_server.mjs";

const args = process.argv.slice(2);
const [osprey, workdir] = args;
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : fallback;
};
const sanitized = !!process.env.OSPREY_SANITIZED;
const seconds = flag("--seconds", Number(process.env.OSPREY_SOAK_SECONDS ?? (sanitized ? 20 : 60)));
const seed = flag("--seed", 20261203);
// A hang anywhere (the server's drain included) fails the test instead of
// holding CI until its time limit.
setTimeout(() => {
  console.log(`FAIL the soak did not finish within ${seconds * 2 + 180} s`);
  process.exit(1);
}, (seconds * 2 + 180) * 1000).unref();
fs.mkdirSync(workdir, { recursive: true });
const model = path.join(workdir, "tiny-qwen2-q8_0.gguf");
if (!fs.existsSync(model)) execFileSync(osprey, ["synth", "--preset", "tiny-qwen2", "--type", "q8_0", "-o", model]);

// A small seeded generator, so a failing run can be repeated with --seed.
function rng(s) {
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const server = await startOsprey(osprey, ["-m", model, "-P", "8", "-c", "512", "-t", "2"]);
const { proc, port, base } = server;

const failures = [];
const tally = {};
const count = (what) => (tally[what] = (tally[what] ?? 0) + 1);
function fail(msg) {
  if (failures.length < 30) failures.push(msg);
  count("failures");
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function metrics() {
  const text = await (await fetch(base + "/metrics")).text();
  const value = (name) => Number(text.match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1] ?? NaN);
  return {
    running: value("osprey_running_sequences"), queued: value("osprey_queue_depth"),
    kvUsed: value("osprey_kv_blocks_used"), connections: value("osprey_open_connections"),
    rss: value("process_resident_memory_bytes"),
  };
}

// Sends raw bytes on a fresh connection; resolves with what came back.
function raw(write, { timeoutMs = 8000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let out = "";
    const done = () => resolve(out);
    sock.on("data", (d) => (out += d));
    sock.on("error", done);
    sock.on("close", done);
    sock.setTimeout(timeoutMs, () => sock.destroy());
    sock.on("connect", () => write(sock));
  });
}

const seeded = { model: "x", messages: [{ role: "user", content: "Tell me a long story." }], max_tokens: 16, seed: 77, temperature: 0.8 };
async function seededText() {
  const r = await fetch(base + "/v1/chat/completions", { method: "POST", body: JSON.stringify(seeded) });
  const j = await r.json();
  if (r.status !== 200) throw new Error(`the seeded request got ${r.status}: ${JSON.stringify(j)}`);
  return j.choices[0].message.content;
}
const reference = await seededText();

function chatBody(random, extra = {}) {
  const words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"];
  const content = Array.from({ length: 1 + Math.floor(random() * 40) }, () => words[Math.floor(random() * words.length)]).join(" ");
  return { model: "x", messages: [{ role: "system", content: "Shared system prompt." }, { role: "user", content }],
           max_tokens: 4 + Math.floor(random() * 40), seed: Math.floor(random() * 1e9), temperature: random() * 1.5, ...extra };
}

// Reads a stream to its end, checking that it ends properly.
async function readStream(r, label) {
  const text = await r.text();
  if (!text.trimEnd().endsWith("data: [DONE]")) fail(`${label}: the stream did not end with [DONE]: ${text.slice(-200)}`);
  if (!/"finish_reason":"(stop|length)"/.test(text)) fail(`${label}: no finish_reason in the stream`);
}

function expectStatus(status, label, allowed = [200]) {
  if (status >= 500 || !allowed.includes(status)) fail(`${label}: status ${status}`);
}

const hostile = [
  ["malformed JSON", () => fetch(base + "/v1/chat/completions", { method: "POST", body: '{"messages": [' }), [400]],
  ["wrong types", (random) => {
    const fields = [["temperature", "hot"], ["messages", 5], ["stream", "yes"], ["max_tokens", -3], ["n", 1e9], ["stop", { a: 1 }], ["logit_bias", [1]], ["seed", 1.5]];
    const [k, v] = fields[Math.floor(random() * fields.length)];
    return fetch(base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ ...chatBody(random), [k]: v }) });
  }, [400]],
  ["nesting past the limit", () => fetch(base + "/tokenize", { method: "POST", body: "[".repeat(100000) }), [400]],
  ["invalid UTF-8", () => fetch(base + "/v1/completions", { method: "POST", body: Buffer.from([0x7b, 0x22, 0x70, 0x72, 0x6f, 0x6d, 0x70, 0x74, 0x22, 0x3a, 0x22, 0xff, 0xc3, 0x22, 0x7d]) }), [400]],
  ["context overflow", (random) => fetch(base + "/v1/chat/completions", { method: "POST", body: JSON.stringify(chatBody(random, { max_tokens: 100000 })) }), [400]],
];
const hostileRaw = [
  ["a body over the limit", (sock) => {
    sock.write(`POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 << 20}\r\n\r\n`);
    sock.write("x".repeat(1 << 16));
  }, /^HTTP\/1\.1 413/],
  ["a trickled header", (sock) => {
    sock.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\n");
    const t = setInterval(() => sock.write("X-Slow: 1\r\n"), 300);
    setTimeout(() => { clearInterval(t); sock.destroy(); }, 1500);
  }, /^$/],
  ["half a request", (sock) => {
    sock.write('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 500\r\n\r\n{"messages":');
    setTimeout(() => sock.destroy(), 100);
  }, /^$/],
  ["garbage", (sock) => sock.write("\x00\x01GARBAGE\r\n\r\n"), /^HTTP\/1\.1 400/],
  ["pipelined requests", (sock) => {
    sock.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  }, /^HTTP\/1\.1 200[\s\S]*HTTP\/1\.1 200/],
  ["a chunked body", (sock) => {
    sock.write("POST /tokenize HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n" +
               "5\r\n{\"con\r\ne\r\ntent\":\"hello\"}\r\n0\r\n\r\n");
  }, /^HTTP\/1\.1 200[\s\S]*"tokens":\[/],
];

// One client's actions, chosen at random with these weights.
const actions = [
  [30, "stream read to the end", async (random) => {
    const r = await fetch(base + "/v1/chat/completions", { method: "POST", body: JSON.stringify(chatBody(random, { stream: true })) });
    expectStatus(r.status, "stream");
    await readStream(r, "stream");
  }],
  [15, "stream dropped after a few chunks", async (random) => {
    const controller = new AbortController();
    const r = await fetch(base + "/v1/chat/completions", { method: "POST", body: JSON.stringify(chatBody(random, { stream: true, max_tokens: 64 })), signal: controller.signal });
    expectStatus(r.status, "stream to drop");
    const reader = r.body.getReader();
    const keep = 1 + Math.floor(random() * 5);
    for (let i = 0; i < keep; i++) if ((await reader.read()).done) break;
    controller.abort();
  }],
  [10, "request abandoned at once", async (random) => {
    const controller = new AbortController();
    const p = fetch(base + "/v1/chat/completions", { method: "POST", body: JSON.stringify(chatBody(random, { stream: random() < 0.5 })), signal: controller.signal });
    setTimeout(() => controller.abort(), Math.floor(random() * 30));
    await p.then((r) => r.text()).catch(() => {});
  }],
  [10, "non-streaming request cancelled midway", async (random) => {
    const controller = new AbortController();
    const p = fetch(base + "/v1/completions", { method: "POST", body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 200, seed: 1 }), signal: controller.signal });
    setTimeout(() => controller.abort(), 20 + Math.floor(random() * 200));
    await p.then((r) => r.text()).catch(() => {});
  }],
  [10, "non-streaming request", async (random) => {
    const r = await fetch(base + "/v1/chat/completions", { method: "POST", body: JSON.stringify(chatBody(random, { n: 1 + Math.floor(random() * 3) })) });
    expectStatus(r.status, "non-streaming");
    const j = await r.json();
    if (!Array.isArray(j.choices) || j.choices.length === 0) fail(`non-streaming: no choices: ${JSON.stringify(j).slice(0, 200)}`);
  }],
  [5, "seeded request", async () => {
    const text = await seededText();
    if (text !== reference) fail(`the seeded request returned ${JSON.stringify(text)}, not ${JSON.stringify(reference)}`);
  }],
  [10, "hostile request", async (random) => {
    const [label, send, allowed] = hostile[Math.floor(random() * hostile.length)];
    const r = await send(random);
    await r.text();
    expectStatus(r.status, label, allowed);
  }],
  [10, "hostile connection", async (random) => {
    const [label, write, expect] = hostileRaw[Math.floor(random() * hostileRaw.length)];
    const out = await raw(write);
    if (!expect.test(out)) fail(`${label}: got ${JSON.stringify(out.slice(0, 80))}`);
  }],
];
const totalWeight = actions.reduce((a, [w]) => a + w, 0);

async function client(id, until) {
  const random = rng(seed + id * 7919);
  while (Date.now() < until) {
    let pick = random() * totalWeight;
    const action = actions.find(([w]) => (pick -= w) < 0);
    try {
      await action[2](random);
      count(action[1]);
    } catch (e) {
      // Only cancellations may throw; anything else is a dropped connection.
      if (e.name === "AbortError") count(action[1]);
      else fail(`${action[1]}: ${e.cause?.code ?? ""} ${e.message}`);
    }
  }
}

async function settle() {
  let m;
  for (let i = 0; i < 150; i++) {
    m = await metrics();
    if (m.running === 0 && m.queued === 0 && m.kvUsed === 0 && m.connections <= 1) break;
    await sleep(100);
  }
  return m;
}

// Whatever goes wrong, the server's own account of it is shown.
process.on("uncaughtException", (e) => {
  console.log(`FAIL ${e.stack ?? e}\nserver exit: ${proc.exitCode ?? proc.signalCode}\nthe server's log ends:\n${server.log().slice(-4000)}`);
  process.exit(1);
});
process.on("unhandledRejection", (e) => {
  throw e;
});
const warmup = Math.min(10, Math.max(3, seconds / 6));
await Promise.all(Array.from({ length: 16 }, (_, i) => client(1000 + i, Date.now() + warmup * 1000)));
const before = await settle();
console.log(`baseline after a ${warmup} s warm-up: running ${before.running}, queue ${before.queued}, KV blocks used ${before.kvUsed}, ` +
            `connections ${before.connections}, resident ${(before.rss / 2 ** 20).toFixed(1)} MiB`);
for (const k of Object.keys(tally)) delete tally[k];

const t0 = Date.now();
await Promise.all(Array.from({ length: 16 }, (_, i) => client(i, t0 + seconds * 1000)));
const elapsed = (Date.now() - t0) / 1000;
const after = await settle();
console.log(`after ${elapsed.toFixed(0)} s of 16 clients: running ${after.running}, queue ${after.queued}, KV blocks used ${after.kvUsed}, ` +
            `connections ${after.connections}, resident ${(after.rss / 2 ** 20).toFixed(1)} MiB`);
console.log("actions: " + Object.entries(tally).map(([k, v]) => `${k} ${v}`).join(", "));

if (after.running !== 0) fail(`${after.running} sequences still running`);
if (after.queued !== 0) fail(`${after.queued} requests still queued`);
if (after.kvUsed !== before.kvUsed) fail(`KV blocks in use: ${after.kvUsed}, baseline ${before.kvUsed}`);
if (after.connections > 1) fail(`${after.connections} connections still open`);
// Freed memory stays with the allocator's per-thread arenas and the model's
// pages are mapped on demand, so resident memory moves a little; a leak of a
// request's buffers or a thread's stack per connection grows it by far more
// than this over thousands of requests. The sanitizers keep freed memory in
// quarantine, so there the figure is reported, not judged.
const allowed = Math.max(32 * 2 ** 20, before.rss * 0.15);
if (!sanitized && after.rss - before.rss > allowed)
  fail(`resident memory grew from ${(before.rss / 2 ** 20).toFixed(1)} to ${(after.rss / 2 ** 20).toFixed(1)} MiB`);
const last = await seededText();
if (last !== reference) fail("the seeded request's text changed after the soak");
const health = await fetch(base + "/health");
if (health.status !== 200) fail(`/health is ${health.status} after the soak`);
if (proc.exitCode !== null || proc.signalCode !== null) fail(`the server exited during the soak:\n${server.log().slice(-2000)}`);

proc.kill("SIGTERM");
const code = await new Promise((resolve) => {
  proc.on("exit", (c) => resolve(c));
  setTimeout(() => resolve("no exit within 40 s of SIGTERM"), 40000).unref();
});
if (code !== 0) fail(`the server exited with ${code} after SIGTERM`);
const errors = server.log().split("\n").filter((l) => /failed:|internal error/.test(l));
if (errors.length) fail(`the server logged failures:\n${errors.slice(0, 5).join("\n")}`);

for (const f of failures) console.log("FAIL " + f);
console.log(failures.length === 0 ? `soak passed (seed ${seed})` : `soak failed (seed ${seed})`);
process.exit(failures.length === 0 ? 0 : 1);
