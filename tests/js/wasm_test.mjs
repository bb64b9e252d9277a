// The WebAssembly module under Node, in either flavour (build-wasm/src/wasm/osprey.js
// or the single-threaded build-wasm-single/src/wasm/osprey-single.js): 32
// greedy tokens on three model shapes in q8_0 and q4_0 equal the native
// build's; a reply is the same on 1 and 2 threads (where the module has
// them) and after a reset; the
// tokenizer and chat template answer as natively; and hostile files, a file
// over the wasm32 limit and mistyped options are refused by name, with the
// module still usable after.
// Usage: node wasm_test.mjs OSPREY_BINARY OSPREY_JS WORKDIR
// Exit code 77 (a skip) only when the module was not built.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { checks, synthModel } from "./osprey_server.mjs";

const [osprey, moduleJs, workdir] = process.argv.slice(2);
if (!fs.existsSync(moduleJs)) {
  console.log(`skip: ${moduleJs} was not built (bash scripts/build_wasm.sh builds it; setup.sh runs that)`);
  process.exit(77);
}
const createOsprey = createRequire(import.meta.url)(path.resolve(moduleJs));
const wasm = await createOsprey();
const { check, failed } = checks();
// The single-threaded module runs on one.
const threads = Math.min(2, wasm.maxThreads());
console.log(`${path.basename(moduleJs)}: at most ${wasm.maxThreads()} threads; the checks use ${threads}`);
const prompt = "the quick brown fox jumps over the lazy dog";

function nativeOsprey(args) {
  const r = spawnSync(osprey, args, { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  return r;
}
// `osprey run --show-ids` prints the text on stdout and the ids on stderr.
function nativeGreedy(file, text = prompt, n = 32) {
  const r = nativeOsprey(["run", "-m", file, "-p", text, "-n", String(n), "--temp", "0", "--show-ids", "-q", "-t", "2"]);
  const m = r.stderr.match(/generated ids: \[([^\]]*)\]/);
  assert.ok(m, `no ids from the native run: ${r.stderr}`);
  // The text is followed by one newline of the command's own.
  return { ids: m[1].split(",").map((s) => Number(s.trim())), text: r.stdout.replace(/\n$/, "") };
}
async function withModel(file, options, fn) {
  const model = await wasm.loadModel(file, options);
  try {
    return await fn(model);
  } finally {
    model.free();
  }
}

for (const preset of ["tiny", "smollm2-135m", "tiny-qwen3"]) {
  for (const type of ["q8_0", "q4_0"]) {
    const file = synthModel(osprey, workdir, preset, type);
    await check(`${preset} ${type}: 32 greedy tokens and their text equal the native build's`, async () => {
      const expected = nativeGreedy(file);
      await withModel(file, { threads }, (model) => {
        const g = model.generate(prompt, { maxTokens: 32, temperature: 0 });
        assert.equal(g.tokens.length, 32);
        assert.deepEqual(g.tokens, expected.ids);
        assert.equal(g.text, expected.text);
        assert.equal(g.finish, "length");
      });
    });
  }
}

const plain = path.join(workdir, "smollm2-plain-q8_0.gguf");
if (!fs.existsSync(plain)) nativeOsprey(["synth", "--preset", "smollm2-135m", "--plain", "--type", "q8_0", "-o", plain]);

await check(`plain random weights (every layer counts): ${threads > 1 ? `1 and ${threads} threads` : "one thread"}, and a reset, give the same bits`, async () => {
  // Sampled at a temperature, so a change anywhere in the logits shows in the tokens.
  const options = { maxTokens: 24, temperature: 1, topK: 0, topP: 1, minP: 0, seed: 7 };
  const one = await withModel(plain, { threads: 1 }, (m) => m.generate(prompt, options).tokens);
  await withModel(plain, { threads }, (m) => {
    assert.deepEqual(m.generate(prompt, options).tokens, one);
    m.reset();
    assert.deepEqual(m.generate(prompt, options).tokens, one);
  });
});

await check("plain random weights: greedy tokens equal the native build's", async () => {
  const expected = nativeGreedy(plain, prompt, 16);
  await withModel(plain, { threads }, (m) => assert.deepEqual(m.generate(prompt, { maxTokens: 16, temperature: 0 }).tokens, expected.ids));
});

await check("logits(ids): the next token's scores, whose best is the greedy token; bad ids are refused", async () => {
  const file = synthModel(osprey, workdir, "tiny-qwen3", "q8_0");
  await withModel(file, { threads }, (m) => {
    const ids = m.tokenize(prompt);
    const scores = m.logits(ids);
    assert.ok(scores instanceof Float32Array);
    assert.equal(scores.length, m.info().vocabulary);
    const best = scores.reduce((b, v, i) => (v > scores[b] ? i : b), 0);
    m.reset();
    assert.equal(m.generate(prompt, { maxTokens: 1, temperature: 0 }).tokens[0], best);
    assert.throws(() => m.logits([1, m.info().vocabulary]), /token 1 is not an id of this vocabulary/);
    assert.throws(() => m.logits([]), /no tokens/);
  });
});

await check("timeKernels on the CPU path: false, and no kernel times (only a GPU device times its kernels)", async () => {
  const file = synthModel(osprey, workdir, "tiny-qwen3", "q8_0");
  await withModel(file, { threads }, (m) => {
    assert.equal(m.timeKernels(true), false);
    m.generate(prompt, { maxTokens: 2, temperature: 0 });
    assert.deepEqual(m.kernelTimes(), []);
    assert.equal(m.timeKernels(false), true);
  });
});

if (wasm.maxThreads() === 1) {
  await check("the single-threaded module refuses threads it lacks, saying why, and runs on its one", async () => {
    const file = synthModel(osprey, workdir, "tiny", "q8_0");
    await assert.rejects(wasm.loadModel(file, { threads: 2 }),
                         /threads 2 is out of range \(0\.\.\.1\): this is the single-threaded module \(osprey-single\.js\)/);
    await withModel(file, { threads: 0 }, (m) => assert.equal(m.generate(prompt, { maxTokens: 2 }).tokens.length, 2));
  });
}

await check("streaming: the pieces are the reply's text, and returning false stops it", async () => {
  const file = synthModel(osprey, workdir, "tiny", "q8_0");
  await withModel(file, {}, (m) => {
    const pieces = [];
    const g = m.generate(prompt, { maxTokens: 12, temperature: 0 }, (p) => { pieces.push(p); });
    assert.equal(pieces.join(""), g.text);
    m.reset();
    let n = 0;
    const stopped = m.generate(prompt, { maxTokens: 12, temperature: 0 }, () => ++n < 3);
    assert.equal(stopped.finish, "cancelled");
    assert.equal(n, 3);
  });
});

await check("tokenizer and chat template: the same ids and text as the native build", async () => {
  const file = synthModel(osprey, workdir, "tiny-qwen3", "q8_0");
  const text = "Hello, wörld! 12345 \u{1F600} tabs\tand  spaces";
  const nat = nativeOsprey(["tokenize", "-m", file, "--ids", text]).stdout.trim();
  await withModel(file, {}, (m) => {
    const ids = m.tokenize(text);
    assert.equal(`[${ids.join(", ")}]`, nat);
    assert.equal(m.detokenize(m.tokenize(text, { addBos: false })), text);
    const chat = m.applyChatTemplate([{ role: "user", content: "ping" }]);
    assert.match(chat, /ping/);
    assert.ok(chat.length > "ping".length);
    const reply = m.chat([{ role: "user", content: "ping" }], { maxTokens: 4, temperature: 0 });
    assert.ok(reply.tokens.length > 0);
  });
});

await check("hostile files are refused with a message, and the module goes on working", async () => {
  const good = fs.readFileSync(synthModel(osprey, workdir, "tiny", "q8_0"));
  const cases = [
    ["a truncated file", good.subarray(0, 1000), /truncat|end|past|bytes/i],
    ["random bytes", Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 24)), /GGUF|magic/i],
    ["an empty file", new Uint8Array(0), /GGUF|empty|small|truncat|magic/i],
  ];
  for (const [what, bytes, pattern] of cases) {
    await assert.rejects(wasm.loadModel(bytes), (e) => {
      assert.match(e.message, pattern, what);
      return true;
    }, what);
  }
  await assert.rejects(wasm.loadModel(path.join(workdir, "no-such-file.gguf")), /no-such-file/);
  await assert.rejects(wasm.loadModel(12345), /File, Blob, ArrayBuffer/);
  await withModel(good, {}, (m) => assert.equal(m.generate(prompt, { maxTokens: 4, temperature: 0 }).tokens.length, 4));
});

await check("a file over the wasm32 limit is refused naming the limit, before any memory is taken", async () => {
  const saved = wasm.maxModelBytes;
  wasm.maxModelBytes = 1000;
  try {
    await assert.rejects(wasm.loadModel(new Uint8Array(5000)), /at most .*GiB.*wasm32 addresses 4 GiB/);
  } finally {
    wasm.maxModelBytes = saved;
  }
  assert.ok(saved > 3 * 1024 ** 3 && saved < 4 * 1024 ** 3, String(saved));
});

await check("mistyped options are refused by name", async () => {
  const file = synthModel(osprey, workdir, "tiny", "q8_0");
  await assert.rejects(wasm.loadModel(file, { threads: "two" }), /threads must be a number/);
  await assert.rejects(wasm.loadModel(file, { threads: 1000 }), /threads 1000 is out of range/);
  await assert.rejects(wasm.loadModel(file, { cacheTypeK: "q9" }), /cache_type_k|q9/);
  await assert.rejects(wasm.loadModel(file, { cacheTypeV: 8 }), /cacheTypeV must be a string/);
  await withModel(file, {}, (m) => {
    assert.throws(() => m.generate(prompt, { maxTokens: "many" }), /maxTokens must be a number/);
    assert.throws(() => m.generate(prompt, { maxTokens: 1e300 }), /maxTokens must be a number: an integer in range/);
    assert.throws(() => m.generate(prompt, { maxTokens: 2.5 }), /maxTokens must be a number: an integer in range/);
    assert.throws(() => m.generate(prompt, { seed: -1 }), /seed must be a number: an integer in range/);
    assert.throws(() => m.chat([{ role: "user" }]), /messages\[0\] must be \{role: string, content: string\}/);
    assert.throws(() => m.detokenize([1, 1e9]), /token 1 is not an id/);
    assert.equal(m.generate(prompt, { maxTokens: 3, temperature: 0 }).tokens.length, 3);
  });
});

console.log(failed() ? `${failed()} check(s) failed` : "all checks passed");
process.exit(failed() ? 1 : 0);
