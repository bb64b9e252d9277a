// Starts `osprey serve` on a free port for a test and waits until it is ready.
// Returns { proc, port, base, log } where log() is what the server has written
// to stderr so far.
import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export async function startServer(osprey, args, { timeoutMs = 60000 } = {}) {
  const proc = spawn(osprey, ["serve", "--port", "0", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let log = "";
  const port = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("the server did not start:\n" + log)), timeoutMs);
    proc.stderr.on("data", (d) => {
      log += d;
      const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    proc.on("exit", (code) => reject(new Error(`the server exited with ${code}:\n${log}`)));
  });
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < timeoutMs / 100; i++) {
    const r = await fetch(base + "/ready").catch(() => null);
    if (r && r.status === 200) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { proc, port, base, log: () => log };
}

// The openai package, or exit 77 (a skip) when tests/js has no node_modules.
export async function openaiOrSkip() {
  try {
    return (await import("openai")).default;
  } catch {
    console.log("SKIP: tests/js has no node_modules (scripts/setup.sh runs npm ci there)");
    process.exit(77);
  }
}

// WORKDIR/PRESET-TYPE.gguf, synthesized on first use.
export function synthModel(osprey, workdir, preset, type) {
  fs.mkdirSync(workdir, { recursive: true });
  const model = path.join(workdir, `${preset}-${type}.gguf`);
  if (!fs.existsSync(model)) execFileSync(osprey, ["synth", "--preset", preset, "--type", type, "-o", model], { stdio: "ignore" });
  return model;
}

// One unlabelled value of the server's /metrics (NaN when absent).
export async function metric(base, name) {
  const text = await (await fetch(base + "/metrics")).text();
  const m = text.match(new RegExp(`^${name} (\\S+)$`, "m"));
  return m ? Number(m[1]) : NaN;
}

// Named checks that go on after a failure: `await check(name, fn)` prints
// "ok" or "FAIL" with the error; failed() counts the failures.
export function checks() {
  let failed = 0;
  const check = async (name, fn) => {
    try {
      await fn();
      console.log(`ok   ${name}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${name}: ${e.stack ?? e}`);
    }
  };
  return { check, failed: () => failed };
}

// WORKDIR/tiny-llama-spm.gguf: the tiny preset with Llama's real
// SentencePiece vocabulary from the shared test data (exit 77 without it).
export function spmModelOrSkip(osprey, workdir, testdata) {
  const vocab = path.join(testdata ?? "", "vocab", "ggml-vocab-llama-spm.gguf");
  if (!fs.existsSync(vocab)) {
    console.log(`SKIP: ${vocab} is missing`);
    process.exit(77);
  }
  fs.mkdirSync(workdir, { recursive: true });
  const model = path.join(workdir, "tiny-llama-spm.gguf");
  if (!fs.existsSync(model))
    execFileSync(osprey, ["synth", "--preset", "tiny", "--type", "q8_0", "--vocab", vocab, "-o", model], { stdio: "ignore" });
  return model;
}

// Debian's chromium, headless through playwright-core (CHROMIUM overrides the
// path), or exit with a skip when either is missing: cleanup() runs first
// and returns the exit code (77, a skip, unless earlier checks failed).
export async function launchChromiumOrSkip(cleanup = () => 77, extraArgs = []) {
  let chromium;
  try {
    ({ chromium } = await import("playwright-core"));
  } catch {
    console.log("SKIP: tests/js has no playwright-core (scripts/setup.sh runs npm ci there)");
    process.exit(cleanup());
  }
  const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
  try {
    // --no-sandbox: CI runs as root, where chromium's sandbox cannot start.
    return await chromium.launch({ executablePath, args: ["--no-sandbox", "--disable-dev-shm-usage", ...extraArgs], timeout: 60000 });
  } catch (e) {
    console.log(`SKIP: chromium (${executablePath}) cannot start: ${e.message.split("\n")[0]}`);
    process.exit(cleanup());
  }
}

// web/serve.mjs (the in-browser demo page) on a free port, serving the
// WebAssembly module in `moduleDir` (and `extraArgs`): { proc, base }.
export async function startWebPage(moduleDir, extraArgs = []) {
  const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "../../web/serve.mjs");
  const proc = spawn(process.execPath, [script, "--port", "0", "--module-dir", moduleDir, ...extraArgs],
                     { stdio: ["ignore", "pipe", "inherit"] });
  const base = await new Promise((resolve, reject) => {
    let out = "";
    proc.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/at (http:\/\/[^/]+)\//);
      if (m) resolve(m[1]);
    });
    proc.on("exit", (code) => reject(new Error(`web/serve.mjs exited with ${code}: ${out}`)));
  });
  return { proc, base };
}
