// Drives `osprey serve` with the official `openai` npm client and raw HTTP:
// chat, completions, streaming, n>1, stop, logprobs, seed reproducibility
// under load, 16 concurrent streams with disconnects, 1,000 idle keep-alive
// connections, hostile input, API keys and graceful shutdown. Usage: node server_test.mjs OSPREY_BINARY WORKDIR
import { execFileSync } from "node:child_process";
import net from "node:net";
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import { startServer as startOsprey } from "./osprey_server.mjs";

let OpenAI;
try {
  OpenAI = (await import("openai")).default;
} catch {
  console.log("SKIP: the openai package is not installed in tests/js (scripts/setup.sh runs npm ci there)");
  process.exit(77);
}

const [osprey, workdir] = process.argv.slice(2);
fs.mkdirSync(workdir, { recursive: true });
const model = path.join(workdir, "tiny-qwen2-q8_0.gguf");
if (!fs.existsSync(model)) execFileSync(osprey, ["synth", "--preset", "tiny-qwen2", "--type", "q8_0", "-o", model]);

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

const startServer = (extra = [], modelFile = model) =>
  startOsprey(osprey, ["-m", modelFile, "-P", "8", "-c", "512", "-t", "2", ...extra], { timeoutMs: 30000 });

async function metrics(base) {
  const text = await (await fetch(base + "/metrics")).text();
  const value = (name) => {
    const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
    return m ? Number(m[1]) : NaN;
  };
  return { text, value };
}

async function raw(port, data, { timeoutMs = 5000 } = {}) {
  return new Promise((resolve) => {
    const sock = net.connect(port, "127.0.0.1");
    let out = "";
    sock.on("data", (d) => (out += d));
    sock.on("error", () => resolve(out));
    sock.on("close", () => resolve(out));
    sock.setTimeout(timeoutMs, () => {
      sock.destroy();
      resolve(out);
    });
    sock.on("connect", () => {
      if (typeof data === "function") data(sock);
      else sock.write(data);
    });
  });
}

const messages = [
  { role: "system", content: "You are a test." },
  { role: "user", content: "Count from one to ten, please." },
];

const server = await startServer();
const client = new OpenAI({ baseURL: server.base + "/v1", apiKey: "unused", maxRetries: 0 });

await check("models lists the file", async () => {
  const list = await client.models.list();
  assert.equal(list.data.length, 1);
  assert.equal(list.data[0].id, "tiny-qwen2-q8_0.gguf");
});

let reference;
await check("chat completion, non-streaming", async () => {
  const r = await client.chat.completions.create({ model: "x", messages, max_tokens: 24, seed: 7, temperature: 0.9 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
  assert.ok(r.system_fingerprint.startsWith("osprey-"));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  assert.ok(r.usage.completion_tokens > 0 && r.usage.completion_tokens <= 24);
  reference = r;
});

await check("streaming chat gives the same text as non-streaming for the same seed", async () => {
  const stream = await client.chat.completions.create({
    model: "x", messages, max_tokens: 24, seed: 7, temperature: 0.9, stream: true, stream_options: { include_usage: true },
  });
  let text = "", finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.delta.content ?? "";
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks > 2);
  assert.equal(text, reference.choices[0].message.content);
  assert.equal(finish, reference.choices[0].finish_reason);
  // The same counts; only cached_tokens differs, since the second request finds the first one's prompt in the cache.
  const counts = ({ prompt_tokens, completion_tokens, total_tokens }) => ({ prompt_tokens, completion_tokens, total_tokens });
  assert.deepEqual(counts(usage), counts(reference.usage));
  assert.ok(usage.prompt_tokens_details.cached_tokens > 0, "the repeated prompt was found in the prefix cache");
  assert.ok(usage.prompt_tokens_details.cached_tokens < usage.prompt_tokens);
});

await check("completions, streaming and not", async () => {
  const r = await client.completions.create({ model: "x", prompt: "Once upon a time", max_tokens: 10, seed: 3 });
  assert.equal(r.object, "text_completion");
  assert.equal(r.usage.completion_tokens, r.choices[0].finish_reason === "length" ? 10 : r.usage.completion_tokens);
  const s = await client.completions.create({ model: "x", prompt: "Once upon a time", max_tokens: 10, seed: 3, stream: true });
  let text = "";
  for await (const chunk of s) for (const c of chunk.choices) text += c.text;
  assert.equal(text, r.choices[0].text);
});

await check("n > 1 returns distinct, indexed choices", async () => {
  const r = await client.chat.completions.create({ model: "x", messages, max_tokens: 16, n: 3, seed: 11, temperature: 1.2 });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1, 2]);
  assert.ok(new Set(r.choices.map((c) => c.message.content)).size > 1, "all choices were identical");
  const again = await client.chat.completions.create({ model: "x", messages, max_tokens: 16, n: 3, seed: 11, temperature: 1.2 });
  assert.deepEqual(again.choices.map((c) => c.message.content), r.choices.map((c) => c.message.content));
});

await check("stop sequences end the text before the match", async () => {
  const full = await client.completions.create({ model: "x", prompt: "abc", max_tokens: 40, seed: 5, temperature: 1 });
  const text = full.choices[0].text;
  assert.ok(text.length >= 8, "need some text to cut: " + JSON.stringify(text));
  const stop = text.slice(5, 7);
  const cut = await client.completions.create({ model: "x", prompt: "abc", max_tokens: 40, seed: 5, temperature: 1, stop: [stop, "\u0000never"] });
  assert.equal(cut.choices[0].finish_reason, "stop");
  assert.equal(cut.choices[0].text, text.slice(0, text.indexOf(stop)));
  // Streaming must cut at the same place even when the stop string spans tokens.
  const s = await client.completions.create({ model: "x", prompt: "abc", max_tokens: 40, seed: 5, temperature: 1, stop, stream: true });
  let streamed = "";
  for await (const chunk of s) for (const c of chunk.choices) streamed += c.text;
  assert.equal(streamed, cut.choices[0].text);
});

await check("logprobs and top_logprobs", async () => {
  const r = await client.chat.completions.create({ model: "x", messages, max_tokens: 6, seed: 2, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.ok(t.logprob <= 0);
    assert.equal(t.top_logprobs.length, 3);
    for (let i = 1; i < 3; i++) assert.ok(t.top_logprobs[i - 1].logprob >= t.top_logprobs[i].logprob);
    assert.ok(t.logprob <= t.top_logprobs[0].logprob + 1e-6);
  }
  const greedy = await client.chat.completions.create({ model: "x", messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 1 });
  for (const t of greedy.choices[0].logprobs.content) assert.equal(t.token, t.top_logprobs[0].token);
});

await check("the same seed gives the same text alone and beside 15 other requests", async () => {
  const req = { model: "x", messages: [{ role: "user", content: "Tell me a story." }], max_tokens: 40, seed: 1234, temperature: 1.0, top_p: 0.9 };
  const alone = (await client.chat.completions.create(req)).choices[0].message.content;
  const others = [];
  for (let i = 0; i < 15; i++) {
    others.push(client.chat.completions.create({
      model: "x", messages: [{ role: "user", content: `Other request number ${i} ${"x".repeat(i * 7)}` }],
      max_tokens: 20 + i * 3, temperature: 1.0, stream: i % 2 === 0,
    }).then(async (r) => { if (r[Symbol.asyncIterator]) for await (const _ of r); }));
  }
  const together = client.chat.completions.create(req);
  const [res] = await Promise.all([together, ...others]);
  assert.equal(res.choices[0].message.content, alone);
});

await check("16 concurrent streams, 5 disconnecting midway, leave nothing behind", async () => {
  const tasks = [];
  for (let i = 0; i < 16; i++) {
    tasks.push((async () => {
      const abort = i % 3 === 0 && i < 15;
      const controller = new AbortController();
      const stream = await client.chat.completions.create(
        { model: "x", messages: [{ role: "user", content: `stream ${i}` }], max_tokens: 30, seed: i, stream: true },
        { signal: controller.signal });
      let n = 0, finish = null, text = "";
      try {
        for await (const chunk of stream) {
          for (const c of chunk.choices) {
            text += c.delta.content ?? "";
            if (c.finish_reason) finish = c.finish_reason;
          }
          if (abort && ++n === 3) controller.abort();
        }
      } catch (e) {
        if (!abort) throw e;
        return "aborted";
      }
      if (abort) return "aborted";
      assert.ok(["stop", "length"].includes(finish), `stream ${i} ended without a finish_reason`);
      return "complete";
    })());
  }
  const results = await Promise.all(tasks);
  assert.equal(results.filter((r) => r === "complete").length, 11);
  let m;
  for (let i = 0; i < 50; i++) {
    m = await metrics(server.base);
    if (m.value("osprey_running_sequences") === 0 && m.value("osprey_kv_blocks_used") === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.equal(m.value("osprey_running_sequences"), 0, "sequences leaked");
  assert.equal(m.value("osprey_kv_blocks_used"), 0, "KV blocks leaked");
  assert.equal(m.value("osprey_queue_depth"), 0);
  assert.match(m.text, /osprey_time_to_first_token_seconds_count [1-9]/);
  assert.match(m.text, /osprey_requests_total\{endpoint="\/v1\/chat\/completions",status="200"\} \d+/);
});

await check("1,000 idle keep-alive connections hold no thread each, and streams flow beside them", async () => {
  const threads = () => Number(fs.readFileSync(`/proc/${server.proc.pid}/status`, "utf8").match(/^Threads:\s+(\d+)/m)[1]);
  const streamSeconds = async () => {
    const t0 = performance.now();
    const s = await client.chat.completions.create({ model: "x", messages, max_tokens: 32, seed: 5, stream: true });
    let text = "";
    for await (const chunk of s) for (const c of chunk.choices) text += c.delta.content ?? "";
    return { seconds: (performance.now() - t0) / 1000, text };
  };
  const alone = await streamSeconds();
  const before = threads();
  const openBefore = (await metrics(server.base)).value("osprey_open_connections");
  // Each connection completes one request and then sits idle, kept alive.
  const sockets = await Promise.all(Array.from({ length: 1000 }, () => new Promise((resolve, reject) => {
    const sock = net.connect(server.port, "127.0.0.1");
    let got = "";
    sock.on("error", reject);
    sock.on("data", (d) => {
      got += d;
      if (got.includes('{"status":"ok"}')) resolve(sock);
    });
    sock.on("connect", () => sock.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"));
  })));
  try {
    const open = (await metrics(server.base)).value("osprey_open_connections");
    assert.ok(open >= 1000, `the server counts ${open} open connections`);
    // The threads that answered the 1,000 requests end as soon as each is done.
    let during = threads();
    for (let i = 0; i < 30 && during > before + 4; i++) {
      await new Promise((r) => setTimeout(r, 100));
      during = threads();
    }
    assert.ok(during <= before + 4, `threads went from ${before} to ${during} with 1,000 idle connections`);
    const beside = await streamSeconds();
    assert.equal(beside.text, alone.text);
    console.log(`     threads ${before} -> ${during} with ${open} connections open; a 32-token stream took ` +
                `${alone.seconds.toFixed(3)} s alone, ${beside.seconds.toFixed(3)} s beside them`);
    assert.ok(beside.seconds < alone.seconds * 3 + 1, "streaming slowed down beside the idle connections");
  } finally {
    for (const sock of sockets) sock.destroy();
  }
  let after;
  for (let i = 0; i < 50 && (after = (await metrics(server.base)).value("osprey_open_connections")) > openBefore + 2; i++)
    await new Promise((r) => setTimeout(r, 100));
  assert.ok(after <= openBefore + 2, `${after} connections still counted after closing 1,000 (${openBefore} before)`);
});

await check("tokenize, detokenize and apply-template", async () => {
  const t = await (await fetch(server.base + "/tokenize", { method: "POST", body: JSON.stringify({ content: "hello world" }) })).json();
  assert.ok(t.tokens.length > 0);
  const d = await (await fetch(server.base + "/detokenize", { method: "POST", body: JSON.stringify({ tokens: t.tokens }) })).json();
  assert.equal(d.content, "hello world");
  const a = await (await fetch(server.base + "/apply-template", { method: "POST", body: JSON.stringify({ messages }) })).json();
  assert.equal(a.prompt, "<|im_start|>system\nYou are a test.<|im_end|>\n<|im_start|>user\nCount from one to ten, please.<|im_end|>\n<|im_start|>assistant\n");
});

async function expectError(body, status, pattern, { endpoint = "/v1/chat/completions", raw: rawBody } = {}) {
  const r = await fetch(server.base + endpoint, { method: "POST", headers: { "content-type": "application/json" }, body: rawBody ?? JSON.stringify(body) });
  assert.equal(r.status, status, `${JSON.stringify(body)?.slice(0, 80)} -> ${r.status}`);
  const j = await r.json();
  assert.ok(j.error && typeof j.error.message === "string" && "type" in j.error && "param" in j.error && "code" in j.error);
  if (pattern) assert.match(j.error.message, pattern);
  return j.error;
}

await check("bad requests get OpenAI error objects naming the problem", async () => {
  await expectError(null, 400, /not valid JSON/, { raw: "{not json" });
  await expectError(null, 400, /JSON object/, { raw: "[1,2]" });
  assert.equal((await expectError({ messages, temperature: "hot" }, 400, /temperature/)).param, "temperature");
  await expectError({ messages, temperature: -1 }, 400, /temperature/);
  await expectError({ messages, top_p: 7 }, 400, /top_p/);
  await expectError({ messages, n: 1000 }, 400, /'n'/);
  await expectError({ messages, max_tokens: "many" }, 400, /max_tokens/);
  await expectError({ messages: [{ role: "wizard", content: "hi" }] }, 400, /role/);
  await expectError({ messages: [] }, 400, /messages/);
  await expectError({ messages: "hello" }, 400, /messages/);
  await expectError({ messages: [{ role: "user", content: 5 }] }, 400, /content/);
  await expectError({ messages, logit_bias: { "-4": 1 } }, 400, /logit_bias/);
  await expectError({ messages, logit_bias: { " 5": 1 } }, 400, /logit_bias/);
  // A huge key is named by its start and its length, not echoed whole; cut between characters.
  const longKey = "7".repeat(31) + "é".repeat(100000);
  const lb = await expectError({ messages, logit_bias: { [longKey]: 1 } }, 400, /key '7{31}\.\.\.' \(200031 bytes\) is not a token id/);
  assert.ok(lb.message.length < 200, `the error echoes ${lb.message.length} characters`);
  await expectError({ messages, stop: [1, 2] }, 400, /stop/);
  const ctx = await expectError({ messages, max_tokens: 1e12 }, 400, /maximum context length is 512 tokens.*requested/);
  assert.equal(ctx.code, "context_length_exceeded");
  await expectError({ prompt: 42 }, 400, /prompt/, { endpoint: "/v1/completions" });
  const nf = await fetch(server.base + "/v1/nothing");
  assert.equal(nf.status, 404);
});

await check("invalid UTF-8, a 100 MB body and slow clients leave the server healthy", async () => {
  const bad = Buffer.concat([Buffer.from('{"messages":[{"role":"user","content":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}]}')]);
  const r = await fetch(server.base + "/v1/chat/completions", { method: "POST", body: bad });
  assert.equal(r.status, 400);
  const huge = await raw(server.port, (sock) => {
    sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${100 * 1024 * 1024}\r\n\r\n`);
    sock.write("x".repeat(1 << 20));
  });
  assert.match(huge, /^HTTP\/1\.1 413/);
  // Slow-loris: connections that trickle a header and never finish it.
  const slow = [];
  for (let i = 0; i < 20; i++) {
    slow.push(raw(server.port, (sock) => {
      sock.write("POST /v1/completions HTTP/1.1\r\nHost: x\r\n");
      const t = setInterval(() => sock.write("X-Slow: 1\r\n"), 500);
      sock.on("close", () => clearInterval(t));
    }, { timeoutMs: 20000 }));
  }
  for (let i = 0; i < 5; i++) {
    const h = await fetch(server.base + "/health");
    assert.equal(h.status, 200);
    await new Promise((r) => setTimeout(r, 200));
  }
  const ok = await client.chat.completions.create({ model: "x", messages, max_tokens: 4 });
  assert.ok(ok.choices[0].message.content !== undefined);
  const closed = await Promise.all(slow);
  for (const c of closed) assert.ok(c === "" || /^HTTP\/1\.1 408/.test(c), c.slice(0, 40));
  const garbage = await raw(server.port, "GARBAGE\r\n\r\n");
  assert.match(garbage, /^HTTP\/1\.1 400/);
});

await check("8 parallel streams beat 8 sequential requests", async () => {
  // A real model shape (SmolLM2-135M), where a decode step is bound by
  // reading the weights, which batching shares among sequences.
  const big = path.join(workdir, "smollm2-135m-q8_0.gguf");
  if (!fs.existsSync(big)) execFileSync(osprey, ["synth", "--preset", "smollm2-135m", "--type", "q8_0", "-o", big]);
  const srv = await startServer([], big);
  try {
    const c = new OpenAI({ baseURL: srv.base + "/v1", apiKey: "unused", maxRetries: 0 });
    const one = (i) => c.completions.create({ model: "x", prompt: `Throughput ${i}`, max_tokens: 48, seed: i, temperature: 1 });
    await one(99);  // warm up
    let t0 = performance.now();
    for (let i = 0; i < 8; i++) await one(i);
    const sequential = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const firstToken = [];
    await Promise.all([...Array(8).keys()].map(async (i) => {
      const start = performance.now();
      const s = await c.completions.create({ model: "x", prompt: `Throughput ${i}`, max_tokens: 48, seed: i, temperature: 1, stream: true });
      let first = true;
      for await (const _ of s) if (first) { firstToken.push((performance.now() - start) / 1000); first = false; }
    }));
    const parallel = (performance.now() - t0) / 1000;
    const ratio = sequential / parallel;
    firstToken.sort((a, b) => a - b);
    console.log(`     throughput: 8 sequential ${sequential.toFixed(2)} s, 8 parallel ${parallel.toFixed(2)} s, ratio ${ratio.toFixed(2)}x; ` +
                `time to first token under 8-way load: median ${firstToken[4].toFixed(3)} s, max ${firstToken[7].toFixed(3)} s`);
    if (process.env.OSPREY_SANITIZED) {
      console.log("     (sanitized build: the ratio is reported, not asserted)");
    } else {
      // Measured 2.7-2.9x on the project's 2-core Zen 3 machines with the AVX2 tiles.
      assert.ok(ratio > 1.3, `batching gained only ${ratio.toFixed(2)}x`);
    }
  } finally {
    srv.proc.kill("SIGKILL");
  }
});

await check("SIGTERM finishes the running stream, then exits 0", async () => {
  const stream = await client.chat.completions.create({ model: "x", messages, max_tokens: 200, stream: true, seed: 9 });
  const exited = new Promise((resolve) => server.proc.on("exit", (code) => resolve(code)));
  let finish = null, n = 0;
  for await (const chunk of stream) {
    if (++n === 2) server.proc.kill("SIGTERM");
    for (const c of chunk.choices) if (c.finish_reason) finish = c.finish_reason;
  }
  assert.ok(["stop", "length"].includes(finish), "the in-flight stream was cut off");
  assert.equal(await exited, 0);
});

await check("an API key is required when set", async () => {
  const keyed = await startServer(["--api-key", "sekrit"]);
  try {
    const bad = new OpenAI({ baseURL: keyed.base + "/v1", apiKey: "wrong", maxRetries: 0 });
    await assert.rejects(bad.models.list(), (e) => e.status === 401);
    const good = new OpenAI({ baseURL: keyed.base + "/v1", apiKey: "sekrit", maxRetries: 0 });
    assert.equal((await good.models.list()).data.length, 1);
    assert.equal((await fetch(keyed.base + "/health")).status, 200);
    assert.equal((await fetch(keyed.base + "/metrics")).status, 401, "/metrics is behind the key unless told");
  } finally {
    keyed.proc.kill("SIGTERM");
  }
  // --public-metrics opens /metrics alone, for a Prometheus scraper.
  const open = await startServer(["--api-key", "sekrit", "--public-metrics"]);
  try {
    const m = await fetch(open.base + "/metrics");
    assert.equal(m.status, 200);
    assert.match(await m.text(), /^osprey_queue_depth /m);
    assert.equal((await fetch(open.base + "/v1/models")).status, 401);
  } finally {
    open.proc.kill("SIGTERM");
  }
});

if (server.proc.exitCode === null) server.proc.kill("SIGKILL");
console.log(failures === 0 ? "all server checks passed" : `${failures} server check(s) failed`);
process.exit(failures === 0 ? 0 : 1);
