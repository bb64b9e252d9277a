// Tool calls and reasoning through the official openai client, on a model
// with random weights and Llama's vocabulary. tool_choice 'required' and a
// named function constrain the reply to a call, so the call's arguments must
// validate (ajv) against the function's parameters, streamed (OpenAI's
// tool_calls deltas, by index) and not. Tool results go back through the
// template; a template with no tool-call format refuses tools with 'auto'.
// Under DeepSeek-R1's template the reply starts in the reasoning: it comes
// back as reasoning_content, and a JSON schema applies to the answer after it.
// Usage: node tools_reasoning_test.mjs OSPREY_BINARY WORKDIR SHARED_TESTDATA
import fs from "node:fs";
import path from "node:path";
import assert from "node:assert/strict";
import { checks, spmModelOrSkip, startServer as startOsprey } from "./osprey_server.mjs";

let OpenAI, Ajv;
try {
  OpenAI = (await import("openai")).default;
  Ajv = (await import("ajv/dist/2020.js")).default;
} catch {
  console.log("SKIP: tests/js has no node_modules (scripts/setup.sh runs npm ci there)");
  process.exit(77);
}
const [osprey, workdir, testdata] = process.argv.slice(2);
const model = spmModelOrSkip(osprey, workdir, testdata);
const templates = path.join(testdata ?? "", "templates");
const ajv = new Ajv({ strict: false });
const { check, failed } = checks();

async function startServer(extra = []) {
  const s = await startOsprey(osprey, ["-m", model, "-P", "4", "-c", "1024", "-t", "2", ...extra]);
  return { ...s, client: new OpenAI({ baseURL: s.base + "/v1", apiKey: "unused", maxRetries: 0 }) };
}

const tools = [
  { type: "function", function: { name: "get_weather", description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 20 }, unit: { enum: ["celsius", "fahrenheit"] } }, required: ["city", "unit"], additionalProperties: false } } },
  { type: "function", function: { name: "add", description: "Adds two integers",
    parameters: { type: "object", properties: { a: { type: "integer", minimum: -100, maximum: 100 }, b: { type: "integer", minimum: -100, maximum: 100 } }, required: ["a", "b"] } } },
  { type: "function", function: { name: "now", description: "The time" } },
];
const parameters = Object.fromEntries(tools.map((t) => [t.function.name, t.function.parameters ?? { type: "object" }]));
const messages = [{ role: "user", content: "What is the weather in Paris?" }];

function validCall(call) {
  assert.equal(call.type, "function");
  assert.match(call.id, /^call_[A-Za-z0-9]{24}$/);
  assert.ok(call.function.name in parameters, `unknown function ${call.function.name}`);
  const args = JSON.parse(call.function.arguments);
  const validate = ajv.compile(parameters[call.function.name]);
  assert.ok(validate(args), `${call.function.arguments}: ${ajv.errorsText(validate.errors)}`);
}

// Accumulates streamed tool_calls deltas by index, as OpenAI's clients do.
async function streamed(stream) {
  const calls = [];
  let content = "", reasoning = "", finish = null;
  for await (const chunk of stream) {
    for (const c of chunk.choices) {
      if (c.finish_reason) finish = c.finish_reason;
      content += c.delta.content ?? "";
      reasoning += c.delta.reasoning_content ?? "";
      for (const t of c.delta.tool_calls ?? []) {
        if (!calls[t.index]) {
          assert.ok(t.id, "the first delta of a call carries its id");
          calls[t.index] = { id: t.id, type: t.type, function: { name: t.function?.name ?? "", arguments: "" } };
        }
        calls[t.index].function.arguments += t.function?.arguments ?? "";
      }
    }
  }
  assert.ok(!calls.includes(undefined), "tool call indices have gaps");
  return { calls, content, reasoning, finish };
}

const chatml = await startServer();
try {
  await check("tool_choice 'required': a call whose arguments validate, finish_reason tool_calls", async () => {
    for (let seed = 0; seed < 8; seed++) {
      const r = await chatml.client.chat.completions.create({ model: "x", messages, tools, tool_choice: "required", max_tokens: 80, seed });
      const m = r.choices[0].message;
      assert.equal(r.choices[0].finish_reason, "tool_calls");
      assert.equal(m.content, null);
      assert.equal(m.tool_calls.length, 1);
      validCall(m.tool_calls[0]);
    }
  });

  await check("streamed tool calls: indices, ids, name then arguments, same call as unstreamed", async () => {
    for (let seed = 0; seed < 4; seed++) {
      const plain = await chatml.client.chat.completions.create({ model: "x", messages, tools, tool_choice: "required", max_tokens: 80, seed });
      const s = await streamed(await chatml.client.chat.completions.create({ model: "x", messages, tools, tool_choice: "required", max_tokens: 80, seed, stream: true }));
      assert.equal(s.finish, "tool_calls");
      assert.equal(s.content, "");
      assert.equal(s.calls.length, 1);
      validCall(s.calls[0]);
      assert.equal(s.calls[0].function.name, plain.choices[0].message.tool_calls[0].function.name);
      assert.equal(s.calls[0].function.arguments, plain.choices[0].message.tool_calls[0].function.arguments);
    }
  });

  await check("a named function is the one called", async () => {
    for (const name of ["add", "now", "get_weather"]) {
      const r = await chatml.client.chat.completions.create({ model: "x", messages, tools, tool_choice: { type: "function", function: { name } }, max_tokens: 80, seed: 3 });
      const call = r.choices[0].message.tool_calls[0];
      assert.equal(call.function.name, name);
      validCall(call);
    }
  });

  await check("tool_choice errors name the field", async () => {
    const unknown = await fetch(chatml.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages, tools, tool_choice: { type: "function", function: { name: "nope" } } }) });
    assert.equal(unknown.status, 400);
    assert.equal((await unknown.json()).error.param, "tool_choice");
    const noTools = await fetch(chatml.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages, tool_choice: "required" }) });
    assert.equal(noTools.status, 400);
    const emptyTools = await fetch(chatml.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages, tools: [], tool_choice: "required" }) });
    assert.equal(emptyTools.status, 400);
    assert.equal((await emptyTools.json()).error.param, "tool_choice");
    const badParams = await fetch(chatml.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({
      messages, tool_choice: "required", tools: [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { x: { type: "string", format: "email" } } } } }] }) });
    assert.equal(badParams.status, 400);
    assert.equal((await badParams.json()).error.param, "tools[0].function.parameters.properties.x.format");
    const both = await fetch(chatml.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages, tools, tool_choice: "required", response_format: { type: "json_object" } }) });
    assert.equal(both.status, 400);
  });

  await check("tool calls and tool results go back through the template", async () => {
    const conversation = [
      ...messages,
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: "21 C and sunny" },
    ];
    const a = await (await fetch(chatml.base + "/apply-template", { method: "POST", body: JSON.stringify({ messages: conversation, tools }) })).json();
    assert.match(a.prompt, /<tool_call>\n\{"name": "get_weather", "arguments": \{"city":"Paris","unit":"celsius"\}\}\n<\/tool_call>/);
    assert.match(a.prompt, /<\|im_start\|>tool\n21 C and sunny<\|im_end\|>/);
    assert.match(a.prompt, /"name": "get_weather"/);  // the tools offered
    const r = await chatml.client.chat.completions.create({ model: "x", messages: conversation, tools, max_tokens: 8, seed: 1 });
    assert.ok(["stop", "length", "tool_calls"].includes(r.choices[0].finish_reason));
  });
} finally {
  chatml.proc.kill("SIGTERM");
}

const gemma = await startServer(["--chat-template", path.join(templates, "google-gemma-2-2b-it.jinja")]);
try {
  await check("a template with no tool-call format refuses tools with 'auto', and constrains 'required'", async () => {
    const auto = await fetch(gemma.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages, tools }) });
    assert.equal(auto.status, 400);
    const err = (await auto.json()).error;
    assert.equal(err.param, "tools");
    assert.match(err.message, /no tool-call format/);
    const forced = await gemma.client.chat.completions.create({ model: "x", messages, tools, tool_choice: "required", max_tokens: 80, seed: 2 });
    validCall(forced.choices[0].message.tool_calls[0]);
  });
} finally {
  gemma.proc.kill("SIGTERM");
}

for (const [file, format] of [["mistralai-Mistral-Nemo-Instruct-2407.jinja", "mistral"], ["meta-llama-Llama-3.1-8B-Instruct.jinja", "llama3"], ["Qwen-Qwen2.5-7B-Instruct.jinja", "hermes"]]) {
  const s = await startServer(["--chat-template", path.join(templates, file)]);
  try {
    await check(`${format} template: tools with 'auto' are accepted and the reply is read for calls`, async () => {
      const r = await s.client.chat.completions.create({ model: "x", messages, tools, max_tokens: 16, seed: 5 });
      assert.ok(["stop", "length", "tool_calls"].includes(r.choices[0].finish_reason));
      const forced = await s.client.chat.completions.create({ model: "x", messages, tools, tool_choice: "required", max_tokens: 80, seed: 5 });
      validCall(forced.choices[0].message.tool_calls[0]);
    });
  } finally {
    s.proc.kill("SIGTERM");
  }
}

const r1 = await startServer(["--chat-template", path.join(templates, "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja")]);
try {
  await check("reasoning: the reply opened inside <think> comes back as reasoning_content, never as content", async () => {
    const r = await r1.client.chat.completions.create({ model: "x", messages, max_tokens: 24, seed: 1 });
    const m = r.choices[0].message;
    assert.ok(m.reasoning_content.length > 0);
    assert.equal(m.content, "");
    const s = await streamed(await r1.client.chat.completions.create({ model: "x", messages, max_tokens: 24, seed: 1, stream: true }));
    assert.equal(s.reasoning, m.reasoning_content);
    assert.equal(s.content, "");
  });

  await check("reasoning with a JSON schema: the schema applies to the answer after the reasoning, which validates", async () => {
    const schema = { type: "object", properties: { answer: { type: "integer", minimum: 0, maximum: 9 }, sure: { type: "boolean" } }, required: ["answer", "sure"] };
    const format = { type: "json_schema", json_schema: { name: "a", schema, strict: true } };
    const validate = ajv.compile(schema);
    for (let seed = 0; seed < 4; seed++) {
      const r = await r1.client.chat.completions.create({ model: "x", messages, max_tokens: 60, seed, response_format: format });
      const m = r.choices[0].message;
      assert.ok(m.reasoning_content.length > 0, "no reasoning");
      assert.ok(validate(JSON.parse(m.content)), m.content);
      const s = await streamed(await r1.client.chat.completions.create({ model: "x", messages, max_tokens: 60, seed, response_format: format, stream: true }));
      assert.equal(s.content, m.content);
      assert.equal(s.reasoning, m.reasoning_content);
    }
  });
} finally {
  r1.proc.kill("SIGTERM");
}

// A Qwen3-like template: it knows <think> blocks but leaves opening one to the model.
const qwen3Template = path.join(workdir, "qwen3-like.jinja");
fs.writeFileSync(qwen3Template, "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}" +
  "{% if add_generation_prompt %}<|im_start|>assistant\n{% if enable_thinking is defined and not enable_thinking %}<think>\n\n</think>\n\n{% endif %}{% endif %}");
const q3 = await startServer(["--chat-template", qwen3Template]);
try {
  await check("a model free to open <think> may reason before a schema-constrained answer", async () => {
    const schema = { type: "object", properties: { answer: { type: "integer", minimum: 0, maximum: 9 } }, required: ["answer"] };
    const format = { type: "json_schema", json_schema: { name: "a", schema, strict: true } };
    const validate = ajv.compile(schema);
    // The '<' token pushed up, so that this random model opens the block.
    const lt = (await (await fetch(q3.base + "/tokenize", { method: "POST", body: JSON.stringify({ content: "<" }) })).json()).tokens.at(-1);
    for (let seed = 0; seed < 3; seed++) {
      const r = await q3.client.chat.completions.create({ model: "x", messages, max_tokens: 60, seed, response_format: format, logit_bias: { [lt]: 100 } });
      const m = r.choices[0].message;
      assert.ok(m.reasoning_content?.length > 0, `no reasoning: ${JSON.stringify(m)}`);
      assert.ok(validate(JSON.parse(m.content)), m.content);
      const plain = await q3.client.chat.completions.create({ model: "x", messages, max_tokens: 60, seed, response_format: format });
      assert.ok(validate(JSON.parse(plain.choices[0].message.content)), plain.choices[0].message.content);
    }
  });
} finally {
  q3.proc.kill("SIGTERM");
}

const kwargsTemplate = path.join(workdir, "kwargs.jinja");
fs.writeFileSync(kwargsTemplate, "thinking={% if enable_thinking %}on{% else %}off{% endif %} effort={{ reasoning_effort }}|{% for m in messages %}{{ m.content }}{% endfor %}");
const kw = await startServer(["--chat-template", kwargsTemplate]);
try {
  await check("chat_template_kwargs and reasoning_effort reach the template", async () => {
    const a = await (await fetch(kw.base + "/apply-template", { method: "POST", body: JSON.stringify({ messages, chat_template_kwargs: { enable_thinking: false }, reasoning_effort: "low" }) })).json();
    assert.equal(a.prompt, "thinking=off effort=low|What is the weather in Paris?");
    const b = await (await fetch(kw.base + "/apply-template", { method: "POST", body: JSON.stringify({ messages, chat_template_kwargs: { enable_thinking: true } }) })).json();
    assert.equal(b.prompt, "thinking=on effort=|What is the weather in Paris?");
  });
} finally {
  kw.proc.kill("SIGTERM");
}

console.log(failed() === 0 ? "all tool and reasoning checks passed" : `${failed()} check(s) failed`);
process.exit(failed() === 0 ? 0 : 1);
