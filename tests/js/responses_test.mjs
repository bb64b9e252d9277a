// POST /v1/responses through the official openai client: responses.create
// (whole and streamed) and responses.stream. A response says what the same
// conversation says through /v1/chat/completions, greedy, token for token;
// streamed events add up to the whole response; function tools, tool results,
// JSON schemas, reasoning and max_output_tokens come back as Response items;
// what a stateless server cannot do is refused by name.
// Usage: node responses_test.mjs OSPREY_BINARY WORKDIR SHARED_TESTDATA
import path from "node:path";
import assert from "node:assert/strict";
import { checks, openaiOrSkip, spmModelOrSkip, startServer } from "./osprey_server.mjs";

const OpenAI = await openaiOrSkip();
const [osprey, workdir, testdata] = process.argv.slice(2);
const model = spmModelOrSkip(osprey, workdir, testdata);
const templates = path.join(testdata ?? "", "templates");
const { check, failed } = checks();

async function start(extra = []) {
  const s = await startServer(osprey, ["-m", model, "-P", "4", "-c", "1024", "-t", "2", ...extra]);
  return { ...s, client: new OpenAI({ baseURL: s.base + "/v1", apiKey: "unused", maxRetries: 0 }) };
}

// Every event of a streamed response, checked for order and numbering.
async function events(stream) {
  const list = [];
  for await (const e of stream) list.push(e);
  list.forEach((e, i) => assert.equal(e.sequence_number, i, `event ${i} (${e.type}) is numbered ${e.sequence_number}`));
  assert.equal(list[0].type, "response.created");
  assert.equal(list[1].type, "response.in_progress");
  assert.match(list.at(-1).type, /^response\.(completed|incomplete)$/);
  return list;
}

const messageText = (r) => r.output.filter((o) => o.type === "message").map((o) => o.content.map((c) => c.text).join("")).join("");

const tools = [
  { type: "function", name: "get_weather", description: "Weather in a city", strict: true,
    parameters: { type: "object", properties: { city: { type: "string", maxLength: 20 }, unit: { enum: ["celsius", "fahrenheit"] } }, required: ["city", "unit"], additionalProperties: false } },
  { type: "function", name: "now", description: "The time", parameters: { type: "object", properties: {} } },
];
const greedy = { temperature: 0, seed: 3 };

const s = await start();
try {
  await check("a response says what the same chat completion says, greedy", async () => {
    const r = await s.client.responses.create({ model: "x", instructions: "Be brief.", input: "Name three colours.", max_output_tokens: 24, ...greedy });
    assert.equal(r.object, "response");
    assert.match(r.id, /^resp_/);
    assert.ok(["completed", "incomplete"].includes(r.status));
    assert.equal(r.instructions, "Be brief.");
    assert.equal(r.max_output_tokens, 24);
    const c = await s.client.chat.completions.create({ model: "x", messages: [{ role: "system", content: "Be brief." }, { role: "user", content: "Name three colours." }], max_tokens: 24, ...greedy });
    assert.equal(r.output_text, c.choices[0].message.content);
    assert.equal(r.usage.input_tokens, c.usage.prompt_tokens);
    assert.equal(r.usage.output_tokens, c.usage.completion_tokens);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    assert.equal(r.status, c.choices[0].finish_reason === "length" ? "incomplete" : "completed");
    const m = r.output.find((o) => o.type === "message");
    assert.equal(m.role, "assistant");
    assert.match(m.id, /^msg_/);
    assert.deepEqual(m.content[0].annotations, []);
  });

  await check("input items: developer and assistant turns, text parts, equal to chat", async () => {
    const input = [
      { role: "developer", content: "Answer in French." },
      { type: "message", role: "user", content: [{ type: "input_text", text: "Hello, " }, { type: "input_text", text: "who are you?" }] },
      { role: "assistant", content: [{ type: "output_text", text: "I am a model." }] },
      { role: "user", content: "And then?" },
    ];
    const r = await s.client.responses.create({ model: "x", input, max_output_tokens: 16, ...greedy });
    const c = await s.client.chat.completions.create({ model: "x", max_tokens: 16, ...greedy, messages: [
      { role: "system", content: "Answer in French." }, { role: "user", content: "Hello, who are you?" },
      { role: "assistant", content: "I am a model." }, { role: "user", content: "And then?" }] });
    assert.equal(r.output_text, c.choices[0].message.content);
  });

  await check("streamed: typed, numbered events whose deltas add up to the whole response", async () => {
    const whole = await s.client.responses.create({ model: "x", input: "Tell me about rivers.", max_output_tokens: 30, ...greedy });
    const list = await events(await s.client.responses.create({ model: "x", input: "Tell me about rivers.", max_output_tokens: 30, ...greedy, stream: true }));
    const deltas = list.filter((e) => e.type === "response.output_text.delta").map((e) => e.delta).join("");
    assert.equal(deltas, whole.output_text);
    assert.ok(list.filter((e) => e.type === "response.output_text.delta").length > 1, "the text came in one piece");
    const final = list.at(-1).response;
    assert.equal(messageText(final), whole.output_text);
    assert.equal(final.usage.output_tokens, whole.usage.output_tokens);
    const types = list.map((e) => e.type);
    for (const t of ["response.output_item.added", "response.content_part.added", "response.output_text.done",
                     "response.content_part.done", "response.output_item.done"])
      assert.ok(types.includes(t), `no ${t}`);
    assert.ok(types.indexOf("response.output_item.added") < types.indexOf("response.output_text.delta"));
    assert.equal(list.find((e) => e.type === "response.output_text.done").text, whole.output_text);
  });

  await check("responses.stream() builds the same final response", async () => {
    const stream = s.client.responses.stream({ model: "x", input: "Tell me about rivers.", max_output_tokens: 30, ...greedy });
    let deltas = 0;
    stream.on("response.output_text.delta", () => deltas++);
    const final = await stream.finalResponse();
    const whole = await s.client.responses.create({ model: "x", input: "Tell me about rivers.", max_output_tokens: 30, ...greedy });
    assert.equal(messageText(final), whole.output_text);
    assert.ok(deltas > 1);
  });

  await check("max_output_tokens cuts the reply: status incomplete, and why", async () => {
    const r = await s.client.responses.create({ model: "x", input: "Count to a hundred.", max_output_tokens: 3, ignore_eos: true, ...greedy });
    assert.equal(r.status, "incomplete");
    assert.deepEqual(r.incomplete_details, { reason: "max_output_tokens" });
    assert.equal(r.usage.output_tokens, 3);
    assert.equal(r.output.find((o) => o.type === "message").status, "incomplete");
    const list = await events(await s.client.responses.create({ model: "x", input: "Count to a hundred.", max_output_tokens: 3, ignore_eos: true, ...greedy, stream: true }));
    assert.equal(list.at(-1).type, "response.incomplete");
  });

  await check("tool_choice 'required': a function_call item whose arguments fit the schema, whole and streamed", async () => {
    const r = await s.client.responses.create({ model: "x", input: "Weather in Paris?", tools, tool_choice: "required", max_output_tokens: 80, seed: 4 });
    const call = r.output.find((o) => o.type === "function_call");
    assert.ok(call, JSON.stringify(r.output));
    assert.match(call.id, /^fc_/);
    assert.match(call.call_id, /^call_/);
    assert.ok(["get_weather", "now"].includes(call.name));
    const args = JSON.parse(call.arguments);
    if (call.name === "get_weather") assert.ok(typeof args.city === "string" && ["celsius", "fahrenheit"].includes(args.unit));
    const list = await events(await s.client.responses.create({ model: "x", input: "Weather in Paris?", tools, tool_choice: "required", max_output_tokens: 80, seed: 4, stream: true }));
    const done = list.find((e) => e.type === "response.function_call_arguments.done");
    assert.equal(done.arguments, call.arguments);
    const added = list.find((e) => e.type === "response.output_item.added" && e.item.type === "function_call");
    assert.equal(added.item.name, call.name);
    assert.equal(added.item.arguments, "");
  });

  await check("a named function is the one called", async () => {
    const r = await s.client.responses.create({ model: "x", input: "What time is it?", tools, tool_choice: { type: "function", name: "now" }, max_output_tokens: 40, seed: 1 });
    assert.equal(r.output.find((o) => o.type === "function_call").name, "now");
  });

  await check("function calls and their outputs go back as input items", async () => {
    const input = [
      { role: "user", content: "Weather in Paris?" },
      { type: "function_call", call_id: "call_1", name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' },
      { type: "function_call_output", call_id: "call_1", output: "21 C and sunny" },
    ];
    const r = await s.client.responses.create({ model: "x", input, tools, max_output_tokens: 8, ...greedy });
    const c = await s.client.chat.completions.create({ model: "x", max_tokens: 8, ...greedy, tools: tools.map(({ type, ...f }) => ({ type, function: f })), messages: [
      { role: "user", content: "Weather in Paris?" },
      { role: "assistant", content: "", tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Paris","unit":"celsius"}' } }] },
      { role: "tool", tool_call_id: "call_1", content: "21 C and sunny" }] });
    assert.equal(r.usage.input_tokens, c.usage.prompt_tokens);
    assert.equal(r.output_text, c.choices[0].message.content ?? "");
  });

  await check("text.format json_schema: the reply is JSON that fits", async () => {
    const schema = { type: "object", properties: { colour: { enum: ["red", "green", "blue"] }, count: { type: "integer", minimum: 0, maximum: 9 } }, required: ["colour", "count"], additionalProperties: false };
    const r = await s.client.responses.create({ model: "x", input: "Pick one.", max_output_tokens: 60, seed: 2,
      text: { format: { type: "json_schema", name: "pick", schema, strict: true } } });
    const v = JSON.parse(r.output_text);
    assert.ok(["red", "green", "blue"].includes(v.colour) && Number.isInteger(v.count), r.output_text);
    assert.deepEqual(r.text.format.schema, schema);
  });

  await check("what a stateless server cannot do is refused by name", async () => {
    const cases = [
      [{ input: "hi", previous_response_id: "resp_1" }, "previous_response_id", /keeps none/],
      [{ input: "hi", background: true }, "background", /keeps none/],
      [{}, "input", /required/],
      [{ input: [] }, "input", /non-empty/],
      [{ input: 7 }, "input", /string or a non-empty array/],
      [{ input: [{ role: "user", content: [{ type: "input_image", image_url: "https://x/y.png" }] }] }, "input[0].content[0].type", /text only/],
      [{ input: [{ type: "item_reference", id: "msg_1" }] }, "input[0].type", /keeps no items/],
      [{ input: [{ role: "robot", content: "x" }] }, "input[0].role", /robot|one of/],
      [{ input: [{ content: "x" }] }, "input[0]", /no .role./],
      [{ input: "hi", tools: [{ type: "web_search_preview" }] }, "tools[0].type", /function tools only/],
      [{ input: "hi", tool_choice: "required" }, "tool_choice", /no 'tools'/],
      [{ input: "hi", max_output_tokens: 0 }, "max_output_tokens", /./],
      [{ input: "hi", text: { format: { type: "json_schema", name: "x" } } }, "text.format.schema", /required/],
      [{ input: "hi", text: { format: { type: "xml" } } }, "text.format.type", /./],
      [{ input: "hi", reasoning: { effort: "extreme" } }, "reasoning.effort", /./],
      [{ input: "hi", temperature: "hot" }, "temperature", /./],
    ];
    for (const [body, param, message] of cases) {
      const r = await fetch(s.base + "/v1/responses", { method: "POST", body: JSON.stringify({ model: "x", ...body }) });
      const text = await r.text();
      assert.equal(r.status, 400, `${JSON.stringify(body)} -> ${r.status} ${text}`);
      const err = JSON.parse(text).error;
      assert.equal(err.param, param, `${JSON.stringify(body)} -> ${text}`);
      assert.match(err.message, message, text);
    }
    const get = await fetch(s.base + "/v1/responses");
    assert.equal(get.status, 405);
  });

  await check("a response too long for the context is refused before it starts", async () => {
    const r = await fetch(s.base + "/v1/responses", { method: "POST", body: JSON.stringify({ input: "word ".repeat(900), max_output_tokens: 500 }) });
    assert.equal(r.status, 400);
    const err = (await r.json()).error;
    assert.equal(err.code, "context_length_exceeded");
    assert.equal(err.param, "input");
  });
} finally {
  s.proc.kill("SIGTERM");
}

const r1 = await start(["--chat-template", path.join(templates, "deepseek-ai-DeepSeek-R1-Distill-Llama-8B.jinja")]);
try {
  await check("reasoning comes back as a reasoning item, before any message, whole and streamed", async () => {
    const r = await r1.client.responses.create({ model: "x", input: "Why is the sky blue?", max_output_tokens: 24, seed: 1 });
    const reasoning = r.output.find((o) => o.type === "reasoning");
    assert.ok(reasoning, JSON.stringify(r.output));
    assert.match(reasoning.id, /^rs_/);
    assert.ok(reasoning.content[0].text.length > 0);
    assert.equal(r.output.indexOf(reasoning), 0);
    assert.ok(r.usage.output_tokens_details.reasoning_tokens > 0);
    assert.ok(r.usage.output_tokens_details.reasoning_tokens <= r.usage.output_tokens);
    const c = await r1.client.chat.completions.create({ model: "x", messages: [{ role: "user", content: "Why is the sky blue?" }], max_tokens: 24, seed: 1 });
    assert.equal(reasoning.content[0].text, c.choices[0].message.reasoning_content);
    const list = await events(await r1.client.responses.create({ model: "x", input: "Why is the sky blue?", max_output_tokens: 24, seed: 1, stream: true }));
    const streamed = list.filter((e) => e.type === "response.reasoning_text.delta").map((e) => e.delta).join("");
    assert.equal(streamed, reasoning.content[0].text);
  });
} finally {
  r1.proc.kill("SIGTERM");
}

if (failed()) {
  console.log(`${failed()} failed`);
  process.exit(1);
}
