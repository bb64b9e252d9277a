// The WGSL kernelgen writes for every GPU kernel (src/backends/kernels/*.kern)
// in Chromium's WebGPU, on the software adapter (SwiftShader, no shader-f16):
// each compiles with no error and makes a compute pipeline, and rms_norm,
// run on random rows, equals a plain reference. Vulkan runs the GLSL made
// from the same descriptions (vulkan_test); this keeps the WGSL side honest
// until the WebGPU back end runs whole models.
// Usage: node webgpu_kernels_test.mjs OSPREY_BINARY WGSL_DIR
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { launchChromiumOrSkip } from "./osprey_server.mjs";

const dir = process.argv[3];
const files = fs.readdirSync(dir).filter((f) => f.endsWith(".wgsl")).sort();
if (files.length === 0) {
  console.error(`FAIL: no .wgsl files in ${dir}`);
  process.exit(1);
}
// WebGPU needs a secure context: a page from 127.0.0.1.
const server = http.createServer((req, res) => res.end("<!doctype html><title>webgpu</title>")).listen(0, "127.0.0.1");
await new Promise((r) => server.on("listening", r));
const browser = await launchChromiumOrSkip(() => (server.close(), 77), [
  "--headless=new", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader",
  "--use-webgpu-adapter=swiftshader",
]);
let failed = 0;
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/`);
  const adapter = await page.evaluate(async () => {
    if (!navigator.gpu) return "";
    const a = await navigator.gpu.requestAdapter();
    if (!a) return "";
    window.device = await a.requestDevice();
    return (a.info && (a.info.vendor + " " + a.info.architecture)) || "an adapter";
  });
  if (!adapter) throw new Error("chromium started but offers no WebGPU adapter (flags: --enable-unsafe-webgpu --use-webgpu-adapter=swiftshader)");
  console.log(`WebGPU adapter: ${adapter}`);
  for (const f of files) {
    const code = fs.readFileSync(path.join(dir, f), "utf8");
    const problems = await page.evaluate(async (code) => {
      const d = window.device;
      d.pushErrorScope("validation");
      const module = d.createShaderModule({ code });
      const info = await module.getCompilationInfo();
      d.createComputePipeline({ layout: "auto", compute: { module, entryPoint: "main" } });
      const err = await d.popErrorScope();
      const lines = info.messages.filter((m) => m.type !== "info").map((m) => `${m.type} ${m.lineNum}:${m.linePos} ${m.message}`);
      if (err) lines.push("pipeline: " + err.message);
      return lines;
    }, code);
    if (problems.length) {
      failed++;
      console.log(`FAIL ${f}:\n  ${problems.join("\n  ")}`);
    } else {
      console.log(`ok   ${f}`);
    }
  }
  // rms_norm on 3 rows of 200: y = x * w / sqrt(mean(x^2) + eps).
  const rows = 3, n = 200, eps = 1e-5;
  const x = Array.from({ length: rows * n }, (_, i) => Math.sin(i * 0.37) * 3);
  const w = Array.from({ length: n }, (_, i) => Math.cos(i * 0.11));
  const got = await page.evaluate(async ({ code, x, w, rows, n, eps }) => {
    const d = window.device;
    const storage = (data) => {
      const b = d.createBuffer({ size: data.length * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      d.queue.writeBuffer(b, 0, new Float32Array(data));
      return b;
    };
    const xb = storage(x), wb = storage(w), yb = storage(new Array(x.length).fill(0));
    const params = new ArrayBuffer(16);
    new Uint32Array(params, 0, 1)[0] = n;
    new Float32Array(params, 4, 1)[0] = eps;
    const pb = d.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
    d.queue.writeBuffer(pb, 0, params);
    const pipeline = d.createComputePipeline({ layout: "auto", compute: { module: d.createShaderModule({ code }), entryPoint: "main" } });
    const group = d.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [xb, wb, yb, pb].map((buffer, binding) => ({ binding, resource: { buffer } })) });
    const read = d.createBuffer({ size: x.length * 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
    const enc = d.createCommandEncoder();
    const pass = enc.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(rows);
    pass.end();
    enc.copyBufferToBuffer(yb, 0, read, 0, x.length * 4);
    d.queue.submit([enc.finish()]);
    await read.mapAsync(GPUMapMode.READ);
    return Array.from(new Float32Array(read.getMappedRange()));
  }, { code: fs.readFileSync(path.join(dir, "rms_norm.wgsl"), "utf8"), x, w, rows, n, eps });
  let worst = 0;
  for (let r = 0; r < rows; r++) {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[r * n + i] ** 2;
    const scale = 1 / Math.sqrt(ss / n + eps);
    for (let i = 0; i < n; i++) {
      const want = x[r * n + i] * scale * w[i];
      worst = Math.max(worst, Math.abs(got[r * n + i] - want) / (1 + Math.abs(want)));
    }
  }
  if (!(worst < 1e-5)) {
    failed++;
    console.log(`FAIL rms_norm on WebGPU: worst relative error ${worst}`);
  } else {
    console.log(`ok   rms_norm on WebGPU equals the reference (worst relative error ${worst.toExponential(2)})`);
  }
} catch (e) {
  failed++;
  console.log(`FAIL: ${e.message}`);
} finally {
  await browser.close();
  server.close();
}
if (failed) {
  console.log(`${failed} failed`);
  process.exit(1);
}
console.log(`${files.length} kernels compile on WebGPU`);
