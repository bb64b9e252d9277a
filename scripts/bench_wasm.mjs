// Prompt processing and decode speed of the WebAssembly build, in the shape
// of `osprey bench`: median tokens/s over repetitions.
//   --device cpu (the default): the SIMD128 CPU path, under Node.
//   --device webgpu: the WebGPU back end, in headless Chromium (Debian's, driven
//     by tests/js's playwright-core), with one more run that times every kernel
//     on the device where the adapter has timestamp queries.
//   --in node|chromium: where the module runs; node for cpu (the default),
//     chromium for webgpu. `--device cpu --in chromium` measures the CPU path
//     in the browser's own WebAssembly engine, which is newer than Node's.
// Usage: node scripts/bench_wasm.mjs MODEL.gguf [-p 128] [-n 32] [-t 2] [-r 3] [--device cpu|webgpu]
//        [--in node|chromium] [--module build-wasm/src/wasm/osprey.js] [--chromium-flags "..."]
import fs from "node:fs";
import http from "node:http";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";

const usage = "usage: node scripts/bench_wasm.mjs MODEL.gguf [-p 128] [-n 32] [-t 2] [-r 3] [--device cpu|webgpu]\n" +
              "       [--in node|chromium] [--module PATH/osprey.js] [--chromium-flags \"FLAGS\"]\n" +
              "  --in chromium runs the module in headless Chromium's worker (webgpu always does; cpu runs in Node\n" +
              "  unless told).\n" +
              "  --device webgpu runs in headless Chromium (CHROMIUM=/usr/bin/chromium); its default flags pick the\n" +
              "  SwiftShader software adapter, so pass --chromium-flags \"--enable-unsafe-webgpu\" for a real GPU.";
const args = process.argv.slice(2);
const here = path.dirname(fileURLToPath(import.meta.url));
const valued = new Set(["-p", "-n", "-t", "-r", "--device", "--in", "--module", "--chromium-flags"]);
const fail = (message) => {
  console.error(`bench_wasm: ${message}`);
  process.exit(2);
};
const opt = (flag, fallback) => {
  const i = args.indexOf(flag);
  if (i < 0) return fallback;
  if (i + 1 >= args.length) fail(`${flag} needs a value`);
  return args[i + 1];
};
if (args.includes("--help") || args.includes("-h")) {
  console.log(usage);
  process.exit(0);
}
const files = args.filter((a, i) => !a.startsWith("-") && (i === 0 || !valued.has(args[i - 1])));
args.forEach((a, i) => {
  if (a.startsWith("-") && !valued.has(a) && !(i > 0 && valued.has(args[i - 1]))) fail(`unknown option ${a}\n${usage}`);
});
if (files.length !== 1) fail(`name one model file\n${usage}`);
const file = path.resolve(files[0]);
if (!fs.existsSync(file)) fail(`${file}: no such file`);
const nPrompt = Number(opt("-p", 128)), nGen = Number(opt("-n", 32)), threads = Number(opt("-t", 2)), reps = Number(opt("-r", 3));
for (const [name, v] of [["-p", nPrompt], ["-n", nGen], ["-t", threads], ["-r", reps]])
  if (!Number.isInteger(v) || v < (name === "-t" || name === "-r" ? 1 : 0)) fail(`${name} ${v} is not a valid count`);
if (nPrompt === 0 && nGen === 0) fail("-p and -n are both 0: nothing to measure");
const device = opt("--device", "cpu");
if (device !== "cpu" && device !== "webgpu") fail(`--device ${device}: the WebAssembly build runs on cpu or webgpu`);
const runner = opt("--in", device === "webgpu" ? "chromium" : "node");
if (runner !== "node" && runner !== "chromium") fail(`--in ${runner}: the module runs in node or chromium`);
if (device === "webgpu" && runner === "node") fail("--device webgpu runs in a browser: Node has no WebGPU");
const modulePath = path.resolve(opt("--module", path.join(here, "../build-wasm/src/wasm/osprey.js")));
if (!fs.existsSync(modulePath)) fail(`${modulePath} does not exist; build it with bash scripts/build_wasm.sh`);

// The measurement, run where the model is (Node, or the page's worker, which
// gets this function's source): a prompt of at least nPrompt tokens from plain
// words (the exact count is reported), generated after `reps` times on a
// fresh sequence. With -p 0 decode still needs one token to start from; its
// time is not reported. On a device that can, one more run times each kernel.
function measure(model, { nPrompt, nGen, reps }) {
  const words = [];
  while (model.tokenize(words.join(" ")).length < Math.max(1, nPrompt)) words.push(`w${words.length % 97}`);
  const prompt = words.join(" ");
  const run = () => {
    model.reset();
    return model.generate(prompt, { maxTokens: Math.max(1, nGen), temperature: 0 });
  };
  run();  // warm-up: pipelines built, pages touched
  const out = { device: model.info().device, pp: [], tg: [], promptTokens: 0, kernels: null };
  for (let r = 0; r < reps; r++) {
    const g = run();
    out.promptTokens = g.promptTokens;
    if (nPrompt > 0) out.pp.push(g.promptTokens / g.promptSeconds);
    if (nGen > 0) out.tg.push(g.tokens.length / g.generationSeconds);
  }
  if (model.timeKernels(true)) {
    const g = run();
    out.kernels = { times: model.kernelTimes(), tokens: g.promptTokens + g.tokens.length };
    model.timeKernels(false);
  }
  return out;
}

const result = await (runner === "node" ? inNode() : inChromium()).catch((e) => fail(e.message));
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const name = path.basename(file);
const where = device === "cpu" ? `wasm simd128${runner === "chromium" ? " (chromium)" : ""}` : result.device;
if (nPrompt > 0) console.log(`| ${name} | ${where} | ${threads} | pp${result.promptTokens} | ${median(result.pp).toFixed(2)} |`);
if (nGen > 0) console.log(`| ${name} | ${where} | ${threads} | tg${nGen} | ${median(result.tg).toFixed(2)} |`);
if (device === "webgpu") {
  const k = result.kernels;
  if (!k) {
    console.log("| the adapter cannot time its kernels (no timestamp-query)");
  } else {
    // As `osprey bench --device vulkan` prints it: one timed run of prompt and decode together.
    const total = k.times.reduce((s, t) => s + t.seconds, 0);
    console.log(`| pp${result.promptTokens}+tg${nGen} on the device: ${(total / k.tokens * 1e3).toFixed(2)} ms per token in ` +
                `${k.times.length} kernels`);
    for (const t of [...k.times].sort((a, b) => b.seconds - a.seconds))
      console.log(`|   ${t.kernel.padEnd(20)} ${(t.calls / k.tokens).toFixed(1).padStart(8)} calls/token ` +
                  `${(t.seconds / k.tokens * 1e3).toFixed(3).padStart(10)} ms/token ${(t.seconds / total * 100).toFixed(1).padStart(6)}%`);
  }
}
process.exit(0);

async function inNode() {
  const osprey = await createRequire(import.meta.url)(modulePath)();
  const model = await osprey.loadModel(file, { threads });
  try {
    return measure(model, { nPrompt, nGen, reps });
  } finally {
    model.free();
  }
}

// Serves the module and the model to a page (cross-origin isolated, for the
// module's threads) whose worker loads it on `device` and runs measure().
async function inChromium() {
  let chromium;
  try {
    ({ chromium } = createRequire(path.join(here, "../tests/js/package.json"))("playwright-core"));
  } catch {
    fail("--in chromium drives Chromium with tests/js's playwright-core: run npm ci in tests/js (setup.sh does)");
  }
  const moduleDir = path.dirname(modulePath);
  const worker = `importScripts('/osprey.js');
${measure.toString()}
onmessage = async (event) => {
  try {
    const osprey = await createOsprey({ mainScriptUrlOrBlob: new URL('/osprey.js', self.location.href).href });
    const bytes = await (await fetch('/model.gguf')).arrayBuffer();
    const model = await osprey.loadModel(bytes, { device: event.data.device, threads: event.data.threads });
    try {
      postMessage(measure(model, event.data));
    } finally {
      model.free();
    }
  } catch (e) {
    postMessage({ error: String(e && e.message ? e.message : e) });
  }
};`;
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, "http://x").pathname;
    const served = {
      "/": ["text/html", () => "<!doctype html><title>bench</title>"],
      "/bench-worker.js": ["text/javascript", () => worker],
      "/osprey.js": ["text/javascript", () => fs.readFileSync(modulePath)],
      "/osprey.worker.js": ["text/javascript", () => fs.readFileSync(path.join(moduleDir, "osprey.worker.js"))],
      "/osprey.wasm": ["application/wasm", () => fs.readFileSync(path.join(moduleDir, "osprey.wasm"))],
      "/model.gguf": ["application/octet-stream", () => fs.readFileSync(file)],
    }[url];
    if (!served) return res.writeHead(404).end();
    res.writeHead(200, { "content-type": served[0], "cross-origin-opener-policy": "same-origin",
                         "cross-origin-embedder-policy": "require-corp" });
    res.end(served[1]());
  }).listen(0, "127.0.0.1");
  await new Promise((resolve) => server.on("listening", resolve));
  const flags = opt("--chromium-flags", "--enable-unsafe-webgpu --enable-features=Vulkan --use-vulkan=swiftshader " +
                                         "--use-webgpu-adapter=swiftshader").split(/\s+/).filter(Boolean);
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  let browser;
  try {
    browser = await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-dev-shm-usage", "--headless=new", ...flags] });
  } catch (e) {
    server.close();
    throw new Error(`chromium (${executablePath}) cannot start: ${e.message.split("\n")[0]}`);
  }
  try {
    const page = await browser.newPage();
    await page.goto(`http://127.0.0.1:${server.address().port}/`);
    const r = await page.evaluate((message) => new Promise((resolve) => {
      const w = new Worker("/bench-worker.js");
      w.onmessage = (e) => resolve(e.data);
      w.onerror = (e) => resolve({ error: e.message || "the worker failed" });
      w.postMessage(message);
    }), { nPrompt, nGen, reps, threads, device });
    if (r.error) throw new Error(r.error);
    return r;
  } finally {
    await browser.close();
    server.close();
  }
}
