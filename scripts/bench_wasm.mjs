// Prompt processing and decode speed of the WebAssembly build under Node, in
// the shape of `osprey bench`: median tokens/s over repetitions.
// Usage: node scripts/bench_wasm.mjs MODEL.gguf [-p 128] [-n 32] [-t 2] [-r 3] [--module build-wasm/src/wasm/osprey.js]
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const args = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const opt = (flag, fallback) => {
  const i = args.indexOf(flag);
  return i < 0 ? fallback : args[i + 1];
};
const file = args.find((a, i) => !a.startsWith("-") && (i === 0 || !args[i - 1].startsWith("-")));
if (!file || args.includes("--help")) {
  console.log("usage: node scripts/bench_wasm.mjs MODEL.gguf [-p 128] [-n 32] [-t 2] [-r 3] [--module PATH/osprey.js]");
  process.exit(file ? 0 : 2);
}
const nPrompt = Number(opt("-p", 128)), nGen = Number(opt("-n", 32)), threads = Number(opt("-t", 2)), reps = Number(opt("-r", 3));
for (const [name, v] of [["-p", nPrompt], ["-n", nGen], ["-t", threads], ["-r", reps]])
  if (!Number.isInteger(v) || v < (name === "-t" || name === "-r" ? 1 : 0)) {
    console.error(`bench_wasm: ${name} ${v} is not a valid count`);
    process.exit(2);
  }
const modulePath = path.resolve(opt("--module", path.join(here, "../build-wasm/src/wasm/osprey.js")));
const osprey = await createRequire(import.meta.url)(modulePath)();
const model = await osprey.loadModel(file, { threads });

// A prompt of at least nPrompt tokens from plain words (the exact count is reported).
// With -p 0 decode still needs one token to start from; its time is not reported.
let words = [];
while (model.tokenize(words.join(" ")).length < Math.max(1, nPrompt)) words.push(`w${words.length % 97}`);
const prompt = words.join(" ");
const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const pp = [], tg = [];
let promptTokens = 0;
for (let r = 0; r < reps; r++) {
  model.reset();
  const g = model.generate(prompt, { maxTokens: Math.max(1, nGen), temperature: 0 });
  promptTokens = g.promptTokens;
  if (nPrompt > 0) pp.push(g.promptTokens / g.promptSeconds);
  if (nGen > 0) tg.push(g.tokens.length / g.generationSeconds);
}
const name = path.basename(file);
if (nPrompt > 0) console.log(`| ${name} | wasm simd128 | ${threads} | pp${promptTokens} | ${median(pp).toFixed(2)} |`);
if (nGen > 0) console.log(`| ${name} | wasm simd128 | ${threads} | tg${nGen} | ${median(tg).toFixed(2)} |`);
model.free();
process.exit(0);
