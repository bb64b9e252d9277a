// The type-confusion test of the whole HTTP API. For every endpoint, every
// field of a valid request (nested message, content-part, tool-call and tool
// fields too, every array element) is in turn removed or replaced by values of
// every wrong JSON type and shape: strings, numbers huge, negative and
// fractional, booleans, null, arrays, objects, nesting past the parser's
// limit, invalid surrogate escapes and invalid UTF-8. Every answer must be
// 2xx or 4xx, never 5xx or a dropped connection; a 4xx must be an OpenAI
// error object whose `param` names the field that was changed (or, for text
// that is not JSON at all, null). /health must stay 200 and a seeded request
// must return its reference text afterwards. The conversation fields are
// then sent to /apply-template under every real chat template in
// ../shared/testdata/templates, which read messages and tools in their own
// ways.
// Usage: node type_confusion_test.mjs OSPREY_BINARY WORKDIR [TEMPLATES_DIR]
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startServer as startOsprey } from "./osprey_server.mjs";

const [osprey, workdir, templatesDir] = process.argv.slice(2);
fs.mkdirSync(workdir, { recursive: true });
const model = path.join(workdir, "tiny-qwen2-q8_0.gguf");
if (!fs.existsSync(model)) execFileSync(osprey, ["synth", "--preset", "tiny-qwen2", "--type", "q8_0", "-o", model]);

const startServer = (extra = []) => startOsprey(osprey, ["-m", model, "-P", "4", "-c", "256", "-t", "1", ...extra]);

// Raw JSON texts of wrong values. Built as text, not through JSON.stringify,
// so that numbers beyond double and int64, lone surrogate escapes and
// invalid UTF-8 reach the server as they are.
const deep = (n) => "[".repeat(n) + "]".repeat(n);
const deepObject = (n) => '{"a":'.repeat(n) + "1" + "}".repeat(n);
const WRONG = [
  ["absent", undefined],
  ["string", '"str"'],
  ["empty string", '""'],
  ["long string", JSON.stringify("a".repeat(100000))],
  ["zero", "0"],
  ["one", "1"],
  ["negative", "-1"],
  ["fraction", "3.5"],
  ["huge float", "1e308"],
  ["huge negative float", "-1e308"],
  ["beyond double", "1e400"],
  ["beyond uint64", "18446744073709551616"],
  ["int64 max", "9223372036854775807"],
  ["below int64", "-9223372036854775809"],
  ["true", "true"],
  ["false", "false"],
  ["null", "null"],
  ["empty array", "[]"],
  ["mixed array", '[1,"a",null,{"b":[]}]'],
  ["empty object", "{}"],
  ["nested object", '{"a":{"b":[1,{"c":null}]}}'],
  ["nesting within the limit", deep(40)],
  ["nesting past the limit", deep(10000)],
  ["objects nested past the limit", deepObject(5000)],
  ["lone high surrogate", '"\\ud800"'],
  ["reversed surrogates", '"\\udc00\\ud800x"'],
  ["invalid UTF-8", Buffer.from([0x22, 0xff, 0xfe, 0xc3, 0x22])],
];

// Every path of a value: each object key and array element, nested.
function paths(value, prefix = []) {
  const out = [];
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push([...prefix, i]);
      out.push(...paths(v, [...prefix, i]));
    });
  } else if (value && typeof value === "object") {
    for (const k of Object.keys(value)) {
      out.push([...prefix, k]);
      out.push(...paths(value[k], [...prefix, k]));
    }
  }
  return out;
}

function pathName(p) {
  let s = "";
  for (const k of p) s += typeof k === "number" ? `[${k}]` : s === "" ? k : `.${k}`;
  return s;
}

const SENTINEL = "\u0001osprey-fuzz-sentinel\u0001";

// The body with the field at `p` replaced by raw JSON text (or removed).
function mutate(body, p, raw) {
  const copy = structuredClone(body);
  let parent = copy;
  for (const k of p.slice(0, -1)) parent = parent[k];
  const last = p[p.length - 1];
  if (raw === undefined) {
    if (Array.isArray(parent)) parent.splice(last, 1);
    else delete parent[last];
    return Buffer.from(JSON.stringify(copy));
  }
  parent[last] = SENTINEL;
  const text = JSON.stringify(copy);
  const at = text.indexOf(JSON.stringify(SENTINEL));
  return Buffer.concat([Buffer.from(text.slice(0, at)), Buffer.from(raw), Buffer.from(text.slice(at + JSON.stringify(SENTINEL).length))]);
}

const chatBody = {
  model: "x",
  messages: [
    { role: "system", content: "You are terse.", name: "sys" },
    { role: "user", content: [{ type: "text", text: "What is the weather in Paris?" }] },
    { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris"}' } }] },
    { role: "tool", tool_call_id: "call_1", content: "sunny, 21 C" },
    { role: "user", content: "Thanks" },
  ],
  tools: [{
    type: "function",
    function: {
      name: "get_weather", description: "Weather of a city", strict: false,
      parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
    },
  }],
  tool_choice: "auto",
  parallel_tool_calls: true,
  max_tokens: 2,
  max_completion_tokens: 2,
  temperature: 0.5,
  top_p: 0.9,
  top_k: 40,
  min_p: 0.05,
  presence_penalty: 0.1,
  frequency_penalty: 0.1,
  repetition_penalty: 1.1,
  n: 1,
  stream: false,
  stream_options: { include_usage: true },
  stop: ["\n\n", "END"],
  seed: 1,
  logprobs: true,
  top_logprobs: 2,
  logit_bias: { "5": 1.5 },
  user: "someone",
  store: false,
  metadata: { k: "v" },
  response_format: { type: "text" },
  add_generation_prompt: true,
  chat_template_kwargs: { enable_thinking: false },
  reasoning_effort: "low",
};

const completionBody = {
  model: "x", prompt: "Once upon a time", max_tokens: 2, temperature: 0.5, top_p: 0.9, top_k: 40, min_p: 0.05,
  presence_penalty: 0.1, frequency_penalty: 0.1, repetition_penalty: 1.1, n: 2, stream: false,
  stream_options: { include_usage: true }, stop: "END", seed: 2, logprobs: 2, logit_bias: { "7": -3 }, echo: false,
  suffix: "", best_of: 1, user: "someone",
};

const endpoints = [
  ["/v1/chat/completions", chatBody],
  ["/v1/completions", completionBody],
  ["/v1/completions", { model: "x", prompt: [1, 2, 3], max_tokens: 2, stream: true, seed: 3 }],
  ["/v1/chat/completions", {
    messages: [{ role: "user", content: "JSON please" }], max_tokens: 8, seed: 4,
    response_format: { type: "json_schema", json_schema: { name: "thing", strict: true, schema: {
      type: "object", additionalProperties: false, required: ["id", "tags"],
      properties: {
        id: { type: "integer", minimum: 1, maximum: 99 }, name: { type: "string", minLength: 1, maxLength: 5 },
        code: { type: "string", pattern: "^[A-Z]{2}$" }, when: { type: "string", format: "date" },
        tags: { type: "array", items: { enum: ["a", "b"] }, minItems: 0, maxItems: 2 },
        kind: { anyOf: [{ const: "x" }, { $ref: "#/$defs/k" }] }, pair: { prefixItems: [{ type: "boolean" }], items: false },
      },
      $defs: { k: { type: ["number", "null"], nullable: true } },
    } } },
  }],
  ["/v1/completions", { prompt: "yes or no?", max_tokens: 4, grammar: 'root ::= "yes" | "no"' }],
  ["/v1/responses", {
    model: "x", instructions: "Be brief.", max_output_tokens: 4, temperature: 0.5, top_p: 0.9, seed: 5, stream: false,
    input: [
      { role: "developer", content: "Answer in one word." },
      { type: "message", role: "user", content: [{ type: "input_text", text: "Weather?" }] },
      { type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Oslo"}' },
      { type: "function_call_output", call_id: "call_1", output: [{ type: "input_text", text: "cold" }] },
      { role: "assistant", content: [{ type: "output_text", text: "Cold." }] },
      { type: "reasoning", summary: [] },
    ],
    tools: [{ type: "function", name: "get_weather", description: "Weather", strict: true,
              parameters: { type: "object", properties: { city: { type: "string", maxLength: 9 } }, required: ["city"] } }],
    tool_choice: { type: "function", name: "get_weather" }, parallel_tool_calls: false,
    reasoning: { effort: "low" }, store: false, metadata: { k: "v" }, user: "someone", truncation: "disabled",
  }],
  ["/v1/responses", { input: "JSON please", max_output_tokens: 8, stream: true,
    text: { format: { type: "json_schema", name: "t", strict: true, schema: { type: "object", properties: { n: { type: "integer" } }, required: ["n"] } } } }],
  ["/tokenize", { content: "hello world", add_special: true, parse_special: false }],
  ["/detokenize", { tokens: [1, 2, 3] }],
  ["/apply-template", {
    messages: chatBody.messages, tools: chatBody.tools, add_generation_prompt: true,
    chat_template_kwargs: { enable_thinking: true }, tool_choice: "auto", reasoning_effort: "high",
  }],
];

const counts = { sent: 0, "2xx": 0, "4xx": 0, failures: 0 };
const failures = [];
function fail(msg) {
  counts.failures++;
  if (failures.length < 40) failures.push(msg);
}

// Whether an error's `param` names the changed field: the field itself, a
// field inside it, or the array or object that holds it.
function related(param, field) {
  if (param === field) return true;
  if (field === "") return true;
  const inside = (a, b) => a.startsWith(b + ".") || a.startsWith(b + "[");
  return inside(param, field) || inside(field, param);
}

// Fields whose error names the field they depend on.
// (A forced tool_choice needs the tool it names: without it, tool_choice is what is wrong.)
const DEPENDS = [[/^logprobs$/, "top_logprobs"], [/^tools(\[|$)/, "tool_choice"]];

async function send(base, endpoint, body, field, label, baseline) {
  counts.sent++;
  let r, text;
  try {
    r = await fetch(base + endpoint, { method: "POST", headers: { "content-type": "application/json" }, body });
    text = await r.text();
  } catch (e) {
    fail(`${endpoint} ${field || "(body)"} = ${label}: the connection failed: ${e.cause?.code ?? e.message}`);
    return;
  }
  if (r.status >= 200 && r.status < 300) {
    counts["2xx"]++;
    return;
  }
  if (r.status < 400 || r.status >= 500) {
    fail(`${endpoint} ${field || "(body)"} = ${label}: status ${r.status}: ${text.slice(0, 200)}`);
    return;
  }
  counts["4xx"]++;
  let err;
  try {
    err = JSON.parse(text).error;
  } catch {
    fail(`${endpoint} ${field} = ${label}: ${r.status} without a JSON body: ${text.slice(0, 120)}`);
    return;
  }
  if (!err || typeof err.message !== "string" || !("param" in err) || !("type" in err) || !("code" in err)) {
    fail(`${endpoint} ${field} = ${label}: ${r.status} without an OpenAI error object: ${text.slice(0, 120)}`);
    return;
  }
  // The body as a whole: text that is not JSON, or beyond the parser's limits.
  if (err.param === null && /not valid JSON|nests arrays|more than \d+ keys|must be a JSON object/.test(err.message)) return;
  // A valid but too large request: OpenAI names the messages or prompt.
  if (err.code === "context_length_exceeded") return;
  // The unchanged request's own error (a template that refuses the
  // conversation's roles) is not about the changed field.
  if (baseline && err.message === baseline) return;
  if (DEPENDS.some(([pattern, param]) => pattern.test(field) && param === err.param)) return;
  // Definitions changed or removed: the $ref that uses them is what fails.
  if (/\$defs/.test(field) && /\$ref' .* points at nothing/.test(err.message)) return;
  if (typeof err.param !== "string" || !related(err.param, field))
    fail(`${endpoint} ${field} = ${label}: param ${JSON.stringify(err.param)} does not name the field (${err.message.slice(0, 100)})`);
}

// Runs `jobs` with a few requests in flight at once.
async function inParallel(jobs, width = 4) {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < jobs.length) await jobs[next++]();
  }));
}

// SIGTERM must drain and exit 0; a server that does not is a failure (and is killed).
async function stopServer(server, name) {
  const exited = new Promise((resolve) => {
    if (server.proc.exitCode !== null) return resolve(server.proc.exitCode);
    server.proc.on("exit", (code, signal) => resolve(code ?? signal));
    setTimeout(() => resolve("still running 40 s after SIGTERM"), 40000).unref();
  });
  server.proc.kill("SIGTERM");
  const code = await exited;
  if (code !== 0) {
    fail(`${name}: SIGTERM gave ${code}:\n${server.log().slice(-1500)}`);
    server.proc.kill("SIGKILL");
  }
}

async function healthy(server, when) {
  const h = await fetch(server.base + "/health").catch((e) => ({ status: `unreachable (${e.message})` }));
  if (h.status !== 200) fail(`/health is ${h.status} ${when}`);
  if (server.proc.exitCode !== null || server.proc.signalCode !== null)
    fail(`the server exited (${server.proc.exitCode ?? server.proc.signalCode}) ${when}:\n${server.log().slice(-2000)}`);
}

async function fuzzJobs(server, endpoint, body, { only } = {}) {
  const unchanged = await fetch(server.base + endpoint, { method: "POST", body: JSON.stringify(body) });
  const baseline = unchanged.status === 400 ? (await unchanged.json()).error.message : null;
  if (unchanged.status !== 200 && unchanged.status !== 400) fail(`${endpoint}: the unchanged request got ${unchanged.status}`);
  if (unchanged.status === 200) await unchanged.text();
  const jobs = [];
  for (const [label, raw] of WRONG.filter(([l]) => l !== "absent")) {
    jobs.push(() => send(server.base, endpoint, Buffer.from(raw), "", `the whole body as ${label}`));
  }
  for (const p of paths(body)) {
    const field = pathName(p);
    if (only && !only(field)) continue;
    for (const [label, raw] of WRONG) jobs.push(() => send(server.base, endpoint, mutate(body, p, raw), field, label, baseline));
  }
  return jobs;
}

const t0 = Date.now();
const server = await startServer();
const seeded = { model: "x", messages: [{ role: "user", content: "Tell me a story." }], max_tokens: 12, seed: 42, temperature: 1.0 };
const reference = await (await fetch(server.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify(seeded) })).json();
if (!reference.choices) throw new Error("the reference request failed: " + JSON.stringify(reference));

for (const [endpoint, body] of endpoints) {
  const before = counts.sent;
  await inParallel(await fuzzJobs(server, endpoint, body));
  await healthy(server, `after fuzzing ${endpoint}`);
  console.log(`${endpoint}: ${counts.sent - before} requests`);
}

// Other methods, unknown paths and bodies on the GET endpoints.
const other = [];
for (const p of ["/health", "/ready", "/metrics", "/v1/models", "/v1/chat/completions", "/tokenize", "/nope", "/v1/models?x=%ff%00"]) {
  for (const method of ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
    other.push(async () => {
      counts.sent++;
      try {
        const r = await fetch(server.base + p, { method, body: method === "GET" ? undefined : "[1,{" });
        await r.text();
        if (r.status >= 500) fail(`${method} ${p}: status ${r.status}`);
        else counts[r.status < 300 ? "2xx" : "4xx"]++;
      } catch (e) {
        fail(`${method} ${p}: the connection failed: ${e.message}`);
      }
    });
  }
}
await inParallel(other);
await healthy(server, "after other methods and paths");

const again = await (await fetch(server.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify(seeded) })).json();
if (again.choices?.[0]?.message?.content !== reference.choices[0].message.content)
  fail(`the seeded request changed after the fuzzing: ${JSON.stringify(again).slice(0, 200)}`);
await stopServer(server, "the chatml server");

// The conversation under each real template: messages, tools and template
// arguments as each template reads them.
const templates = templatesDir && fs.existsSync(templatesDir)
  ? fs.readdirSync(templatesDir).filter((f) => f.endsWith(".jinja")).sort()
  : [];
if (templates.length === 0) console.log(`(no templates in ${templatesDir}; the per-template pass is skipped)`);
const conversation = endpoints.find(([e]) => e === "/apply-template")[1];
for (const t of templates) {
  const s = await startServer(["--chat-template", path.join(templatesDir, t)]);
  const before = counts.sent;
  await inParallel(await fuzzJobs(s, "/apply-template", conversation, { only: (f) => f.startsWith("messages") || f.startsWith("tools") || f.startsWith("chat_template_kwargs") }));
  await healthy(s, `after fuzzing /apply-template under ${t}`);
  console.log(`/apply-template under ${t}: ${counts.sent - before} requests`);
  await stopServer(s, `the server with ${t}`);
}

console.log(`type confusion: ${counts.sent} requests, ${counts["2xx"]} answered 2xx, ${counts["4xx"]} 4xx, ${counts.failures} failures ` +
            `(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
for (const f of failures) console.log("FAIL " + f);
process.exit(counts.failures === 0 ? 0 : 1);
