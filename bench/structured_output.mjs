// Structured output's cost: decode tokens/s with a JSON Schema against the
// same requests without one, alternating, on one server; and the schema's
// compile time (`osprey grammar`). Not part of the test suite.
// Usage: node bench/structured_output.mjs OSPREY_BINARY MODEL.gguf [SCHEMA.json] [ROUNDS]
// MODEL: e.g. `osprey synth --preset tinyllama-1.1b --type q4_0 --vocab ggml-vocab-llama-spm.gguf`.
import { spawn } from "node:child_process";
import path from "node:path";
import fs from "node:fs";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const [osprey, model, schemaFile = path.join(here, "data/schema_40_properties.json"), roundsArg = "5"] = process.argv.slice(2);
if (!osprey || !model) {
  console.error("usage: node bench/structured_output.mjs OSPREY_BINARY MODEL.gguf [SCHEMA.json] [ROUNDS]");
  process.exit(2);
}
const schema = JSON.parse(fs.readFileSync(schemaFile, "utf8"));
const rounds = Number(roundsArg);

const report = (() => {
  const r = spawn(osprey, ["grammar", "--json-schema", schemaFile, "-m", model, "-q"]);
  return new Promise((resolve) => {
    let err = "";
    r.stderr.on("data", (d) => (err += d));
    r.on("exit", () => resolve(err.trim()));
  });
})();
console.log(`schema ${path.basename(schemaFile)} (${Object.keys(schema.properties ?? {}).length} properties):\n  ${(await report).replace(/\n/g, "\n  ")}`);

const proc = spawn(osprey, ["serve", "-m", model, "--port", "0", "-P", "1", "-c", "2048"], { stdio: ["ignore", "ignore", "pipe"] });
let log = "";
const port = await new Promise((resolve) => {
  proc.stderr.on("data", (d) => {
    log += d;
    const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) resolve(Number(m[1]));
  });
});
const base = `http://127.0.0.1:${port}`;
for (let i = 0; i < 600; i++) {
  const r = await fetch(base + "/ready").catch(() => null);
  if (r && r.status === 200) break;
  await new Promise((r) => setTimeout(r, 100));
}

// Decode tokens/s of one streamed request: tokens after the first, over the
// time from the first content to the end.
async function decodeRate(constrained, seed) {
  const body = {
    messages: [{ role: "user", content: "Fill in the record." }], max_tokens: 512, seed, temperature: 1.0,
    stream: true, stream_options: { include_usage: true },
    ...(constrained ? { response_format: { type: "json_schema", json_schema: { name: "record", schema, strict: true } } } : {}),
  };
  const r = await fetch(base + "/v1/chat/completions", { method: "POST", body: JSON.stringify(body) });
  const reader = r.body.getReader();
  const decoder = new TextDecoder();
  let first = 0, last = 0, buffer = "", tokens = 0, text = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let at;
    while ((at = buffer.indexOf("\n\n")) >= 0) {
      const line = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
      const chunk = JSON.parse(line.slice(6));
      if (chunk.usage) tokens = chunk.usage.completion_tokens;
      const content = chunk.choices?.[0]?.delta?.content;
      if (content) {
        if (!first) first = performance.now();
        last = performance.now();
        text += content;
      }
    }
  }
  if (constrained) JSON.parse(text);  // it must be JSON
  return { rate: (tokens - 1) / ((last - first) / 1000), tokens };
}

await decodeRate(false, 0);
await decodeRate(true, 0);
const ratios = [];
for (let i = 1; i <= rounds; i++) {
  const plain = await decodeRate(false, i);
  const json = await decodeRate(true, i);
  ratios.push(json.rate / plain.rate);
  console.log(`round ${i}: unconstrained ${plain.rate.toFixed(1)} tokens/s (${plain.tokens} tokens), ` +
              `with the schema ${json.rate.toFixed(1)} tokens/s (${json.tokens} tokens): ${(100 * json.rate / plain.rate).toFixed(1)}%`);
}
ratios.sort((a, b) => a - b);
console.log(`median: decode with the schema at ${(100 * ratios[Math.floor(ratios.length / 2)]).toFixed(1)}% of unconstrained ` +
            `(range ${(100 * ratios[0]).toFixed(1)}-${(100 * ratios[ratios.length - 1]).toFixed(1)}%)`);
proc.kill("SIGTERM");
