// The WebGPU back end, whole models, in Debian's chromium on its software
// adapter (SwiftShader, no shader-f16): the WebAssembly module runs in a Web
// Worker, loads synthesized models with {device: 'webgpu'}, and its greedy
// tokens equal the native CPU build's on three shapes in q8_0 and q4_0 (and
// K-quants), and
// on plain random weights its logits stay within 1% of the CPU path's range
// over a prompt and 8 steps (f32, f16, q8_0, q4_0).
// Also: the same sequence gives the same tokens after a reset and at another
// thread count; a model the device cannot run is refused by name; a page's
// main thread is told to use a worker. Skips (77) only when the module was
// not built, or chromium cannot start or offers no WebGPU adapter.
// Usage: node webgpu_test.mjs OSPREY MODULE_DIR WORKDIR
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { checks, launchChromiumOrSkip, startServer, startWebPage, synthModel } from "./osprey_server.mjs";

const [osprey, moduleDir, workdir] = process.argv.slice(2);
if (!fs.existsSync(path.join(moduleDir, "osprey.js"))) {
  console.log(`SKIP: ${moduleDir} has no osprey.js (bash scripts/build_wasm.sh builds it; setup.sh runs that)`);
  process.exit(77);
}
const prompt = "the quick brown fox jumps over the lazy dog";

function nativeOsprey(args) {
  const r = spawnSync(osprey, args, { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r;
}
// `osprey run --show-ids` prints the text on stdout and the ids on stderr.
function nativeGreedy(file, n = 32) {
  const r = nativeOsprey(["run", "-m", file, "-p", prompt, "-n", String(n), "--temp", "0", "--show-ids", "-q", "-t", "2"]);
  const m = r.stderr.match(/generated ids: \[([^\]]*)\]/);
  assert.ok(m, `no ids from the native run: ${r.stderr}`);
  return { ids: m[1].split(",").map((s) => Number(s.trim())), text: r.stdout.replace(/\n$/, "") };
}

// The worker the page starts: loads osprey.js, then answers
// {file, options, generate} with the model's info and a generation.
const workerSource = `
importScripts('/osprey.js');
let osprey = null;
// Logits of the CPU path and the device after the same prompt, then after
// each of STEPS more tokens (the CPU's greedy choice, fed to both): the worst
// difference as a share of the CPU logits' range, per step.
async function compareLogits(file, prompt, steps) {
  const bytes = await (await fetch(file)).arrayBuffer();
  const cpu = await osprey.loadModel(bytes, { threads: 2 });
  const gpu = await osprey.loadModel(bytes, { device: 'webgpu' });
  try {
    const worst = [];
    let ids = cpu.tokenize(prompt);
    for (let step = 0; step <= steps; ++step) {
      const a = cpu.logits(ids), b = gpu.logits(ids);
      let lo = Infinity, hi = -Infinity, diff = 0, best = 0;
      for (let i = 0; i < a.length; ++i) {
        lo = Math.min(lo, a[i]);
        hi = Math.max(hi, a[i]);
        diff = Math.max(diff, Math.abs(a[i] - b[i]));
        if (a[i] > a[best]) best = i;
      }
      worst.push(diff / (hi - lo));
      ids = [best];
    }
    return { worst, vocabulary: cpu.info().vocabulary, device: gpu.info().device };
  } finally {
    cpu.free();
    gpu.free();
  }
}
onmessage = async (event) => {
  const { file, options, generations, logits } = event.data;
  try {
    if (!osprey) osprey = await createOsprey({ mainScriptUrlOrBlob: new URL('/osprey.js', self.location.href).href });
    if (logits) {
      postMessage(await compareLogits(file, logits.prompt, logits.steps));
      return;
    }
    const t0 = performance.now();
    const bytes = await (await fetch(file)).arrayBuffer();
    const model = await osprey.loadModel(bytes, options);
    const loadSeconds = (performance.now() - t0) / 1000;
    try {
      const out = [];
      for (const g of generations) {
        if (g.reset) model.reset();
        out.push(model.generate(g.prompt, g.options));
      }
      postMessage({ info: model.info(), out, loadSeconds });
    } finally {
      model.free();
    }
  } catch (e) {
    postMessage({ error: String(e && e.message ? e.message : e) });
  }
};`;

const types = { ".js": "text/javascript", ".wasm": "application/wasm", ".html": "text/html", ".gguf": "application/octet-stream" };
const server = http.createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  let body = null;
  if (url.pathname === "/") body = "<!doctype html><title>webgpu</title>";
  else if (url.pathname === "/test-worker.js") body = workerSource;
  else if (/^\/osprey(\.worker)?\.(js|wasm)$/.test(url.pathname)) body = fs.readFileSync(path.join(moduleDir, url.pathname.slice(1)));
  else if (/^\/models\/[\w.-]+\.gguf$/.test(url.pathname)) body = fs.readFileSync(path.join(workdir, path.basename(url.pathname)));
  if (body === null) {
    res.writeHead(404).end();
    return;
  }
  // Cross-origin isolation: the module's threads need SharedArrayBuffer.
  res.writeHead(200, {
    "content-type": types[path.extname(url.pathname)] || "text/html",
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
  });
  res.end(body);
}).listen(0, "127.0.0.1");
await new Promise((r) => server.on("listening", r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await launchChromiumOrSkip(() => (server.close(), 77), [
  "--headless=new", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
]);
const { check, failed } = checks();
let page;
try {
  page = await browser.newPage();
  await page.goto(base + "/");
  const adapter = await page.evaluate(async () => {
    const a = navigator.gpu && (await navigator.gpu.requestAdapter());
    return a ? (a.info && (a.info.vendor + " " + a.info.architecture)) || "an adapter" : "";
  });
  if (!adapter) {
    console.log("SKIP: chromium started but offers no WebGPU adapter (flags: --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader)");
    await browser.close();
    server.close();
    process.exit(77);
  }
  console.log(`WebGPU adapter: ${adapter}`);
  await page.evaluate(() => { window.worker = new Worker("/test-worker.js"); });
} catch (e) {
  console.log(`FAIL: ${e.message}`);
  await browser.close();
  server.close();
  process.exit(1);
}

// Runs `generations` on the model in the page's worker.
async function inWorker(file, options, generations, logits = null) {
  const r = await page.evaluate((message) => new Promise((resolve) => {
    window.worker.onmessage = (e) => resolve(e.data);
    window.worker.postMessage(message);
  }), { file: "/models/" + path.basename(file), options, generations, logits });
  if (r.error) throw new Error(r.error);
  return r;
}
const greedy = (n) => ({ prompt, options: { maxTokens: n, temperature: 0 } });

try {
  const cases = [];
  for (const preset of ["tiny", "smollm2-135m", "tiny-qwen3"]) for (const type of ["q8_0", "q4_0"]) cases.push([preset, type]);
  cases.push(["tiny", "q4_k"], ["tiny-qwen3", "q5_k"], ["tiny", "q6_k"]);  // K-quants, with q5_0/q5_1 rows in tiny-qwen3
  // GELU gating, post-norms, per-layer rope bases, windows (Gemma 3); soft-caps over 26 layers (Gemma 2); fused QKV (Phi-3).
  cases.push(["tiny-gemma3", "q8_0"], ["tiny-gemma2", "q4_0"], ["tiny-phi3", "q4_0"]);
  // Mixtures of experts routed on the device: 8 of 64 (Qwen3-MoE), Q/K norms over whole rows (OLMoE).
  cases.push(["tiny-qwen3moe", "q4_k"], ["tiny-olmoe", "q8_0"]);
  // Sinks, output and expert biases, clamped SwiGLU and MXFP4 experts (gpt-oss).
  cases.push(["tiny-gpt-oss", "mxfp4"]);
  for (const [preset, type] of cases) {
    {
      const file = synthModel(osprey, workdir, preset, type);
      await check(`${preset} ${type} on WebGPU: 32 greedy tokens and their text equal the native CPU build's`, async () => {
        const expected = nativeGreedy(file);
        const r = await inWorker(file, { device: "webgpu", threads: 2 }, [greedy(32)]);
        assert.match(r.info.device, /^webgpu \(/);
        assert.deepEqual(r.out[0].tokens, expected.ids);
        assert.equal(r.out[0].text, expected.text);
        const g = r.out[0];
        console.log(`     ${r.info.device}: prompt ${g.promptTokens} tokens in ${g.promptSeconds.toFixed(2)} s, ` +
                    `${(g.tokens.length / g.generationSeconds).toFixed(1)} tokens/s, load ${r.loadSeconds.toFixed(1)} s`);
      });
    }
  }

  // Synthesized presets answer from their last token alone (a successor
  // chain); with plain random weights every layer shows in the logits.
  for (const [preset, type] of [["smollm2-135m", "q8_0"], ["tiny", "q4_0"], ["tiny", "f16"], ["tiny-qwen3", "f32"],
                              ["tiny-gemma3", "q8_0"], ["tiny-phi3", "q8_0"], ["tiny-mixtral", "q4_0"],
                              // (gpt-oss in f16: quantized, the CPU's 8-bit activations flip near-tied
                              // routing choices; vulkan_test's GptOss test says more)
                              ["tiny-gpt-oss", "f16"]]) {
    const file = path.join(workdir, `plain-${preset}-${type}.gguf`);
    if (!fs.existsSync(file)) nativeOsprey(["synth", "--preset", preset, "--plain", "--type", type, "-o", file]);
    await check(`plain random weights, ${preset} ${type}: logits over a prompt and 8 steps within 1% of the CPU's range`, async () => {
      const r = await inWorker(file, {}, [], { prompt, steps: 8 });
      assert.equal(r.worst.length, 9);
      const worst = Math.max(...r.worst);
      console.log(`     worst difference ${(worst * 100).toFixed(4)}% of the range (${r.vocabulary} logits, ${r.device})`);
      assert.ok(worst < 0.01, `worst ${worst} per step: ${r.worst.join(", ")}`);
      assert.ok(worst > 0 || type === "f32", "the device gave the CPU's bits exactly: is it running?");
    });
  }

  await check("the same sequence after a reset, and on 1 thread, gives the same tokens (sampled at a temperature)", async () => {
    const file = synthModel(osprey, workdir, "tiny-qwen3", "q8_0");
    const sampled = { prompt, options: { maxTokens: 16, temperature: 1, topK: 0, topP: 1, minP: 0, seed: 11 } };
    const two = await inWorker(file, { device: "webgpu", threads: 2 }, [sampled, { ...sampled, reset: true }]);
    assert.deepEqual(two.out[1].tokens, two.out[0].tokens);
    const one = await inWorker(file, { device: "webgpu", threads: 1 }, [sampled]);
    assert.deepEqual(one.out[0].tokens, two.out[0].tokens);
  });

  await check("scripts/bench_wasm.mjs --device webgpu reports tokens/s and the device's time per kernel", async () => {
    const file = synthModel(osprey, workdir, "tiny-qwen3", "q8_0");
    const script = path.join(path.dirname(new URL(import.meta.url).pathname), "../../scripts/bench_wasm.mjs");
    const r = spawnSync(process.execPath, [script, file, "-p", "8", "-n", "4", "-r", "1", "--device", "webgpu",
                                           "--module", path.join(moduleDir, "osprey.js")], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    console.log(r.stdout.replace(/^/gm, "     "));
    for (const test of ["pp\\d+", "tg4"]) {
      const row = r.stdout.match(new RegExp(`\\| webgpu \\(google swiftshader\\) \\| 2 \\| ${test} \\| ([\\d.]+) \\|`));
      assert.ok(row && Number(row[1]) > 0, `no ${test} row with tokens/s`);
    }
    const total = r.stdout.match(/on the device: ([\d.]+) ms per token in (\d+) kernels/);
    assert.ok(total && Number(total[1]) > 0, "no time on the device");
    const kernels = [...r.stdout.matchAll(/^\|   (\w+) +([\d.]+) calls\/token +([\d.]+) ms\/token +([\d.]+)%$/gm)];
    assert.equal(kernels.length, Number(total[2]));
    const names = kernels.map((k) => k[1]);
    for (const k of ["mat_q8_0", "attention", "rms_norm", "rope", "kv_store"]) assert.ok(names.includes(k), `${k} not timed`);
    const ms = kernels.reduce((s, k) => s + Number(k[3]), 0), share = kernels.reduce((s, k) => s + Number(k[4]), 0);
    assert.ok(Math.abs(ms - Number(total[1])) < 0.01 * kernels.length, `kernels ${ms} ms against ${total[1]} in all`);
    assert.ok(Math.abs(share - 100) < 0.1 * kernels.length, `shares add to ${share}%`);
  });

  await check("scripts/bench_wasm.mjs --in chromium measures the CPU path in the browser; webgpu in Node is refused", async () => {
    const file = synthModel(osprey, workdir, "tiny-qwen3", "q8_0");
    const script = path.join(path.dirname(new URL(import.meta.url).pathname), "../../scripts/bench_wasm.mjs");
    const bench = (...extra) => spawnSync(process.execPath, [script, file, "-p", "8", "-n", "4", "-r", "1", "--module",
                                                             path.join(moduleDir, "osprey.js"), ...extra], { encoding: "utf8" });
    const r = bench("--in", "chromium");
    assert.equal(r.status, 0, r.stderr);
    for (const test of ["pp\\d+", "tg4"]) {
      const row = r.stdout.match(new RegExp(`\\| wasm simd128 \\(chromium\\) \\| 2 \\| ${test} \\| ([\\d.]+) \\|`));
      assert.ok(row && Number(row[1]) > 0, `no ${test} row with tokens/s in ${r.stdout}`);
    }
    assert.ok(!/on the device/.test(r.stdout), "the CPU path has no device timing");
    const refused = bench("--device", "webgpu", "--in", "node");
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /--device webgpu runs in a browser: Node has no WebGPU/);
    const unknown = bench("--in", "deno");
    assert.notEqual(unknown.status, 0);
    assert.match(unknown.stderr, /--in deno: the module runs in node or chromium/);
  });

  await check("a model the device cannot run is refused with what it lacks", async () => {
    const file = synthModel(osprey, workdir, "tiny", "q3_k");
    await assert.rejects(inWorker(file, { device: "webgpu" }, [greedy(4)]),
                         /webgpu cannot run this model; it lacks: q3_k weights \(blk.0.attn_q.weight and \d+ more\)/);
  });

  await check("WebGPU from a page's main thread is refused with where to run it", async () => {
    const message = await page.evaluate(async () => {
      await new Promise((resolve, reject) => {
        const s = document.createElement("script");
        s.src = "/osprey.js";
        s.onload = resolve;
        s.onerror = reject;
        document.head.append(s);
      });
      const o = await createOsprey();
      try {
        await o.loadModel(new Uint8Array(64), { device: "webgpu" });
        return "loaded";
      } catch (e) {
        return e.message;
      }
    });
    assert.match(message, /Web Worker/);
  });

  await check("the demo page picks WebGPU, says so, and its greedy chat reply equals the native server's", async () => {
    const model = synthModel(osprey, workdir, "tiny-qwen3", "q8_0");
    const { proc: web, base: webBase } = await startWebPage(moduleDir);
    const native = await startServer(osprey, ["-m", model, "-t", "2"]);
    try {
      const p = await browser.newPage({ viewport: { width: 1000, height: 600 } });
      const problems = [];
      p.on("pageerror", (e) => problems.push("page error: " + e.message));
      await p.goto(webBase + "/");
      assert.match(await p.textContent("#device"), /WebGPU/);
      await p.setInputFiles("#model-file", model);
      await p.waitForSelector("body[data-ready=true]", { timeout: 120000 });
      assert.equal(await p.getAttribute("body", "data-device"), "webgpu");
      assert.match(await p.textContent("#device"), /runs on WebGPU, google swiftshader/);
      const messages = [{ role: "user", content: "Hello there" }];
      await p.fill("#prompt", messages[0].content);
      await p.click("#send");
      await p.waitForFunction(() => Number(document.body.dataset.replies || 0) > 0, null, { timeout: 300000 });
      const got = await p.locator(".message.assistant").last().textContent();
      const r = await fetch(native.base + "/v1/chat/completions", {
        method: "POST", headers: { "content-type": "application/json" },
        body: JSON.stringify({ messages, temperature: 0, max_tokens: 256 }),
      });
      assert.equal(got, (await r.json()).choices[0].message.content);
      assert.match(await p.textContent("#speed"), /tokens\/s/);
      await p.screenshot({ path: path.join(workdir, "webgpu-page.png") });
      assert.deepEqual(problems, []);
    } finally {
      web.kill();
      native.proc.kill("SIGKILL");
    }
  });
} finally {
  await browser.close();
  server.close();
}
process.exit(failed() ? 1 : 0);
