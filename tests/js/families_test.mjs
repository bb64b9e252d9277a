// Every model family served by `osprey serve`: a tiny synthesized model of
// each, its own chat template (from testdata where the family has one there:
// Gemma, Phi-3; ChatML, which Qwen3 and OLMoE-Instruct speak, otherwise), one
// non-streamed and one streamed chat request through the official openai
// client, and two requests at once. Each must answer 200 with text, a finish
// reason and usage, and the streamed reply must equal the plain one (greedy).
//   usage: node families_test.mjs OSPREY WORKDIR TESTDATA
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { startServer } from "./osprey_server.mjs";

let OpenAI;
try {
  OpenAI = (await import("openai")).default;
} catch {
  console.log("SKIP: tests/js has no node_modules (scripts/setup.sh runs npm ci there)");
  process.exit(77);
}
const [osprey, workdir, testdata] = process.argv.slice(2);
const templates = path.join(testdata ?? "", "templates");
fs.mkdirSync(workdir, { recursive: true });

const families = [
  { preset: "tiny-qwen3", type: "q8_0" },
  { preset: "tiny-qwen3moe", type: "q8_0" },
  { preset: "tiny-gemma3", type: "q4_0", template: "google-gemma-2-2b-it.jinja" },
  { preset: "tiny-gemma2", type: "q8_0", template: "google-gemma-2-2b-it.jinja" },
  { preset: "tiny-phi3", type: "q8_0", template: "microsoft-Phi-3.5-mini-instruct.jinja" },
  { preset: "tiny-olmoe", type: "q8_0" },
  { preset: "tiny-mixtral", type: "q4_0", template: "mistralai-Mistral-Nemo-Instruct-2407.jinja" },
  { preset: "tiny-gpt-oss", type: "mxfp4" },
];

let failures = 0;
for (const f of families) {
  const model = path.join(workdir, `${f.preset}-${f.type}.gguf`);
  if (!fs.existsSync(model)) execFileSync(osprey, ["synth", "--preset", f.preset, "--type", f.type, "-o", model], { stdio: "ignore" });
  const args = ["-m", model, "-P", "2", "-c", "256", "-t", "2"];
  const template = f.template ? path.join(templates, f.template) : null;
  if (template && fs.existsSync(template)) args.push("--chat-template", template);
  const server = await startServer(osprey, args);
  const client = new OpenAI({ baseURL: server.base + "/v1", apiKey: "unused", maxRetries: 0 });
  const name = `${f.preset} (${f.type}${template && fs.existsSync(template) ? ", " + f.template : ", chatml"})`;
  try {
    const request = { model: "m", messages: [{ role: "user", content: "Tell me a story about a fox." }], max_tokens: 12, temperature: 0 };
    const plain = await client.chat.completions.create(request);
    const text = plain.choices[0].message.content;
    if (typeof text !== "string" || text.length === 0) throw new Error("no text in the reply");
    if (!["length", "stop"].includes(plain.choices[0].finish_reason)) throw new Error("finish_reason " + plain.choices[0].finish_reason);
    if (!(plain.usage.prompt_tokens > 5) || !(plain.usage.completion_tokens > 0)) throw new Error("usage " + JSON.stringify(plain.usage));
    let streamed = "";
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true }))
      streamed += chunk.choices[0]?.delta?.content ?? "";
    if (streamed !== text) throw new Error(`streamed ${JSON.stringify(streamed)} differs from ${JSON.stringify(text)}`);
    // Two at once (continuous batching): each still gets the greedy reply.
    const both = await Promise.all([client.chat.completions.create(request), client.chat.completions.create(request)]);
    for (const r of both)
      if (r.choices[0].message.content !== text) throw new Error("a batched reply differs from the one alone");
    console.log(`ok   ${name}: ${JSON.stringify(text)}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: ${e.stack ?? e}\n${server.log()}`);
  }
  server.proc.kill("SIGTERM");
  await new Promise((r) => server.proc.on("exit", r));
}
console.log(failures === 0 ? `${families.length} passed, 0 failed` : `${families.length - failures} passed, ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
