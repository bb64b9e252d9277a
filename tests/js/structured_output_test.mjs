// Structured output through the official openai client, checked by ajv.
// Models with random weights and real vocabularies (SentencePiece with byte
// fallback, and GPT-2's byte-level BPE): the model never "wants" JSON, so
// every valid reply is the constraint's doing. Every reply to every schema in
// schemas.mjs must parse and validate, streamed or not, greedy or sampled,
// with n > 1, and when max_tokens is too short for the model's own choices
// (the budget then closes the document in time). Unsupported keywords get a
// 400 naming them; json_object mode and the `grammar` extension are checked
// too. Usage: node structured_output_test.mjs OSPREY_BINARY WORKDIR VOCAB_DIR
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { schemas, unsupported } from "./schemas.mjs";
import { startServer as startOsprey } from "./osprey_server.mjs";

let OpenAI, Ajv, addFormats;
try {
  OpenAI = (await import("openai")).default;
  Ajv = (await import("ajv/dist/2020.js")).default;
  addFormats = (await import("ajv-formats")).default;
} catch {
  console.log("SKIP: tests/js has no node_modules (scripts/setup.sh runs npm ci there)");
  process.exit(77);
}

const [osprey, workdir, vocabDir] = process.argv.slice(2);
// Under the sanitizers (ten times slower) one vocabulary is enough to catch
// memory errors; both run in the Release suite.
const vocabs = ["ggml-vocab-llama-spm.gguf", "ggml-vocab-gpt-2.gguf"]
  .filter((v) => fs.existsSync(path.join(vocabDir ?? "", v)))
  .slice(0, process.env.OSPREY_SANITIZED ? 1 : 2);
if (vocabs.length === 0) {
  console.log(`SKIP: no test vocabularies in ${vocabDir} (../shared/testdata/vocab)`);
  process.exit(77);
}
fs.mkdirSync(workdir, { recursive: true });

const ajv = new Ajv({ strict: false, allErrors: true });
addFormats(ajv);

let failures = 0;
const failed = (msg) => {
  failures++;
  console.log("FAIL " + msg);
};

const startServer = (model) => startOsprey(osprey, ["-m", model, "-P", "4", "-c", "1024", "-t", "2"]);

function check(label, content, schema) {
  let value;
  try {
    value = JSON.parse(content);
  } catch (e) {
    failed(`${label}: the reply is not JSON (${e.message}): ${JSON.stringify(content).slice(0, 300)}`);
    return false;
  }
  const validate = ajv.compile(schema);
  if (!validate(value)) {
    failed(`${label}: the reply does not validate: ${ajv.errorsText(validate.errors)}: ${content.slice(0, 300)}`);
    return false;
  }
  return true;
}

const messages = [{ role: "user", content: "Answer in JSON." }];
const format = (name, schema) => ({ type: "json_schema", json_schema: { name: name.replace(/[^a-zA-Z0-9_-]/g, "_"), schema, strict: true } });
let replies = 0, tokens = 0;

for (const vocab of vocabs) {
  const model = path.join(workdir, `tiny-${vocab.replace(/\.gguf$/, "")}.gguf`);
  if (!fs.existsSync(model))
    execFileSync(osprey, ["synth", "--preset", "tiny", "--type", "q8_0", "--vocab", path.join(vocabDir, vocab), "-o", model], { stdio: "ignore" });
  const server = await startServer(model);
  const client = new OpenAI({ baseURL: server.base + "/v1", apiKey: "unused", maxRetries: 0 });
  const t0 = Date.now();
  try {
    for (const [i, [name, schema]] of schemas.entries()) {
      const label = `${vocab} ${name}`;
      const r = await client.chat.completions.create({ model: "x", messages, response_format: format(name, schema), max_tokens: 200, seed: i, temperature: 1.0 });
      replies++;
      tokens += r.usage.completion_tokens;
      check(label, r.choices[0].message.content, schema);
      // Streamed, the same seed gives the same text.
      if (i % 5 === 0) {
        const s = await client.chat.completions.create({ model: "x", messages, response_format: format(name, schema), max_tokens: 200, seed: i, temperature: 1.0, stream: true });
        let text = "";
        for await (const chunk of s) for (const c of chunk.choices) text += c.delta.content ?? "";
        if (text !== r.choices[0].message.content) failed(`${label}: streamed ${JSON.stringify(text)} != ${JSON.stringify(r.choices[0].message.content)}`);
      }
      // Greedy, and with a budget too short for the model's own choices.
      if (i % 3 === 1) {
        const g = await client.chat.completions.create({ model: "x", messages, response_format: format(name, schema), max_tokens: 200, temperature: 0 });
        replies++;
        check(`${label} (greedy)`, g.choices[0].message.content, schema);
        const tight = await client.chat.completions.create({ model: "x", messages, response_format: format(name, schema), max_tokens: 60, seed: 100 + i, temperature: 1.5 });
        replies++;
        check(`${label} (max_tokens 60)`, tight.choices[0].message.content, schema);
      }
    }

    const several = await client.chat.completions.create({ model: "x", messages, response_format: format("person", schemas[0][1]), max_tokens: 120, n: 3, seed: 9 });
    for (const c of several.choices) check(`${vocab} n=3 choice ${c.index}`, c.message.content, schemas[0][1]);
    replies += 3;

    const obj = await client.chat.completions.create({ model: "x", messages, response_format: { type: "json_object" }, max_tokens: 80, seed: 4 });
    let parsed = null;
    try { parsed = JSON.parse(obj.choices[0].message.content); } catch {}
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) failed(`${vocab} json_object: ${obj.choices[0].message.content}`);

    // The grammar extension (llama.cpp's GBNF), on completions too.
    const yesNo = await fetch(server.base + "/v1/completions", { method: "POST", body: JSON.stringify({ prompt: "Is it?", grammar: 'root ::= ("yes" | "no") "."', max_tokens: 10, seed: 1 }) });
    const yn = (await yesNo.json()).choices?.[0]?.text;
    if (yn !== "yes." && yn !== "no.") failed(`${vocab} grammar yes/no gave ${JSON.stringify(yn)}`);
  } catch (e) {
    failed(`${vocab}: ${e.message} (${e.cause?.code ?? e.cause?.message ?? "no cause"}); server exit ${server.proc.exitCode ?? server.proc.signalCode}\nthe server's log ends:\n${server.log().slice(-3000)}`);
  } finally {
    console.log(`${vocab}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    server.proc.kill("SIGTERM");
  }
}

// Refusals, on the first model: every unsupported construct names itself.
{
  const model = path.join(workdir, `tiny-${vocabs[0].replace(/\.gguf$/, "")}.gguf`);
  const server = await startServer(model);
  try {
    for (const [name, schema, where] of unsupported) {
      const r = await fetch(server.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages, response_format: format(name, schema) }) });
      const j = await r.json();
      const param = "response_format.json_schema.schema." + where;
      if (r.status !== 400 || j.error?.param !== param)
        failed(`unsupported ${name}: ${r.status} param ${JSON.stringify(j.error?.param)} (wanted ${param}): ${j.error?.message}`);
    }
    const badGrammar = await fetch(server.base + "/v1/completions", { method: "POST", body: JSON.stringify({ prompt: "x", grammar: "root ::= \"a\" | b" }) });
    const bg = await badGrammar.json();
    if (badGrammar.status !== 400 || bg.error?.param !== "grammar" || !/'b' is used but not defined/.test(bg.error?.message))
      failed(`a grammar with an undefined rule: ${badGrammar.status} ${JSON.stringify(bg)}`);
    const leftRec = await fetch(server.base + "/v1/completions", { method: "POST", body: JSON.stringify({ prompt: "x", grammar: "root ::= root \"a\" | \"b\"" }) });
    if (leftRec.status !== 400 || !/left-recursive/.test((await leftRec.json()).error?.message)) failed("a left-recursive grammar was not refused");
    // Hostile grammars within the body limit: each once stopped or stalled the
    // whole server (a stack overflow, quadratic analyses, gigabytes of copies).
    // Each must be refused by name or followed, and the server must answer after.
    const chain = (n, body) => "root ::= r0\n" + Array.from({ length: n - 1 }, (_, i) => `r${i} ::= ${body(i)}`).join("\n") + `\nr${n - 1} ::= "b"`;
    const hostile = [
      ["parentheses a million deep", "root ::= " + "(".repeat(1e6) + '"a"' + ")".repeat(1e6), /nest deeper than 1000/],
      ["a chain of 200k rules", chain(200000, (i) => `r${i + 1} "a" | "c"`), null],
      ["a 2 MB literal", 'root ::= "' + "a".repeat(2e6) + '"', /expands to more than/],
      ["copies past the budget", "root ::=" + ' "x"{10000}'.repeat(300), /expands to more than/],
    ];
    for (const [what, grammar, refusal] of hostile) {
      const t0 = Date.now();
      const r = await fetch(server.base + "/v1/completions", { method: "POST", body: JSON.stringify({ prompt: "x", grammar, max_tokens: 4, seed: 1 }) });
      const j = await r.json();
      const ms = Date.now() - t0;
      if (refusal ? r.status !== 400 || j.error?.param !== "grammar" || !refusal.test(j.error?.message) : r.status !== 200)
        failed(`a grammar of ${what}: ${r.status} ${JSON.stringify(j).slice(0, 300)}`);
      if (ms > 60000) failed(`a grammar of ${what} took ${ms} ms`);
      const health = await fetch(server.base + "/health");
      if (health.status !== 200) failed(`after a grammar of ${what}, /health answered ${health.status}`);
    }
    const noName = await fetch(server.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages, response_format: { type: "json_schema", json_schema: { schema: { type: "object" } } } }) });
    if (noName.status !== 400 || (await noName.json()).error?.param !== "response_format.json_schema.name") failed("a json_schema without a name was not refused");
  } finally {
    server.proc.kill("SIGTERM");
  }
}

console.log(`structured output: ${schemas.length} schemas x ${vocabs.length} vocabularies, ${replies} replies (${tokens} tokens) validated by ajv, ` +
            `${unsupported.length} unsupported constructs refused; ${failures} failures`);
process.exit(failures === 0 ? 0 : 1);
