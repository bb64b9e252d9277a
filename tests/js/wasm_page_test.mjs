// The in-browser page (web/, served by web/serve.mjs) in Debian's chromium,
// headless through playwright-core: it is cross-origin isolated, loads a
// GGUF file picked from disk into the WebAssembly build, and its greedy
// chat reply equals the native server's for the same conversation, turn
// after turn; Stop ends a reply; a truncated or hostile file gives a message
// in the page and the page goes on working. A screenshot is kept
// (WORKDIR/wasm-page.png). Served without cross-origin isolation (as a plain
// static host would), the page runs the single-threaded module from
// SINGLE_MODULE_DIR and replies as well, and Stop restarts its worker with the
// conversation kept. Skips (77) only when the module was not built,
// playwright-core is missing or chromium cannot start.
// Usage: node wasm_page_test.mjs OSPREY MODULE_DIR WORKDIR SINGLE_MODULE_DIR
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { checks, launchChromiumOrSkip, startServer, startWebPage, synthModel } from "./osprey_server.mjs";

const [osprey, moduleDir, workdir, singleDir] = process.argv.slice(2);
if (!fs.existsSync(path.join(moduleDir, "osprey.js"))) {
  console.log(`SKIP: ${moduleDir} has no osprey.js (bash scripts/build_wasm.sh builds it; setup.sh runs that)`);
  process.exit(77);
}
const browser = await launchChromiumOrSkip();

const { check, failed } = checks();
const model = synthModel(osprey, workdir, "smollm2-135m", "q8_0");
const { proc: web, base } = await startWebPage(moduleDir);
const server = await startServer(osprey, ["-m", model, "-t", "2"]);
// The native reply to the same conversation, greedy, up to the page's 256 tokens.
async function nativeReply(messages) {
  const r = await fetch(server.base + "/v1/chat/completions", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ messages, temperature: 0, max_tokens: 256 }),
  });
  assert.equal(r.status, 200);
  return (await r.json()).choices[0].message.content;
}

const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
const problems = [];
page.on("pageerror", (e) => problems.push("page error: " + e.message));
page.on("console", (m) => { if (m.type() === "error") problems.push("console: " + m.text()); });
const replies = async () => Number((await page.getAttribute("body", "data-replies")) || 0);
async function send(text) {
  const before = await replies();
  await page.fill("#prompt", text);
  await page.click("#send");
  await page.waitForFunction((n) => Number(document.body.dataset.replies || 0) > n, before, { timeout: 120000 });
  return page.locator(".message.assistant").last().textContent();
}

try {
  await check("the page is cross-origin isolated (WebAssembly threads can start) and says where it runs", async () => {
    await page.goto(base + "/");
    assert.equal(await page.evaluate(() => window.crossOriginIsolated), true);
    assert.equal(await page.locator("#error").isVisible(), false);
    assert.match(await page.textContent("#device"), /WebAssembly CPU \(SIMD128\)/);
    for (const f of ["/nothing", "/../CMakeLists.txt"]) assert.equal((await fetch(base + f)).status, 404, f);
  });

  await check("a truncated file and a file that is not GGUF give a message in the page", async () => {
    const bytes = fs.readFileSync(model);
    for (const [name, buffer, pattern] of [
      ["truncated.gguf", bytes.subarray(0, 4096), /truncat|end|past|bytes/i],
      ["notes.gguf", Buffer.from("these are not the weights you are looking for\n".repeat(100)), /GGUF|magic/i],
    ]) {
      await page.setInputFiles("#model-file", { name, mimeType: "application/octet-stream", buffer });
      await page.locator("#error").waitFor({ state: "visible", timeout: 30000 });
      assert.match(await page.textContent("#error"), pattern, name);
      assert.equal(await page.isDisabled("#send"), true);
    }
  });

  await check("a picked GGUF file loads, and greedy replies equal the native server's, turn after turn", async () => {
    await page.setInputFiles("#model-file", model);
    await page.waitForSelector("body[data-ready=true]", { timeout: 120000 });
    assert.equal(await page.locator("#error").isVisible(), false);
    assert.match(await page.textContent("#model-name"), /smollm2-135m-q8_0\.gguf \(llama/);
    const conversation = [];
    for (const text of ["Hello there", "And one more thing"]) {
      conversation.push({ role: "user", content: text });
      const got = await send(text);
      const want = await nativeReply(conversation);
      assert.equal(got, want);
      conversation.push({ role: "assistant", content: want });
    }
    assert.match(await page.textContent("#speed"), /tokens\/s/);
    await page.screenshot({ path: path.join(workdir, "wasm-page.png") });
  });

  await check("Stop ends a reply early, and the next message is answered", async () => {
    await page.fill("#prompt", "Tell me everything");
    await page.click("#send");
    await page.waitForFunction(() => (document.querySelector(".message.assistant:last-child")?.textContent || "").length > 3);
    const before = await replies();
    await page.click("#stop");
    await page.waitForFunction((n) => Number(document.body.dataset.replies || 0) > n, before, { timeout: 60000 });
    assert.match(await page.textContent("#speed"), /cancelled/);
    assert.ok((await send("ok")).length > 0);
  });

  await check("no script errors in the page", async () => assert.deepEqual(problems, []));

  await check("not cross-origin isolated, the page runs the single-threaded module, says so, and replies as natively",
              async () => {
    assert.ok(singleDir && fs.existsSync(path.join(singleDir, "osprey-single.js")),
              `${singleDir} has no osprey-single.js (bash scripts/build_wasm.sh --single-thread builds it; setup.sh runs that)`);
    const plain = await startWebPage(moduleDir, ["--single-module-dir", singleDir, "--no-isolation"]);
    const p = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    const errors = [];
    p.on("pageerror", (e) => errors.push("page error: " + e.message));
    try {
      await p.goto(plain.base + "/");
      assert.equal(await p.evaluate(() => window.crossOriginIsolated), false);
      assert.equal(await p.locator("#error").isVisible(), false);
      assert.match(await p.textContent("#device"), /one thread: this page is not cross-origin isolated/);
      await p.setInputFiles("#model-file", model);
      await p.waitForSelector("body[data-ready=true]", { timeout: 120000 });
      assert.match(await p.textContent("#device"),
                   /^runs on WebAssembly CPU \(SIMD128\), 1 thread \(not cross-origin isolated: the single-threaded module, no WebGPU\)$/);
      const count = async () => Number((await p.getAttribute("body", "data-replies")) || 0);
      const say = async (text) => {
        const before = await count();
        await p.fill("#prompt", text);
        await p.click("#send");
        await p.waitForFunction((n) => Number(document.body.dataset.replies || 0) > n, before, { timeout: 120000 });
        return p.locator(".message.assistant").last().textContent();
      };
      const conversation = [{ role: "user", content: "Hello there" }];
      assert.equal(await say("Hello there"), await nativeReply(conversation));
      conversation.push({ role: "assistant", content: await p.locator(".message.assistant").last().textContent() });
      // Stop: no shared memory, so the worker is ended and the model loaded
      // again; the reply so far stays in the conversation, and the next
      // reply is the native one to all of it.
      await p.fill("#prompt", "Tell me everything");
      await p.click("#send");
      await p.waitForFunction(() => (document.querySelector(".message.assistant:last-child")?.textContent || "").length > 3);
      await p.click("#stop");
      await p.waitForSelector("body[data-ready=true]", { timeout: 120000 });
      await p.waitForFunction(() => !document.querySelector("#send").disabled, null, { timeout: 120000 });
      const partial = await p.locator(".message.assistant").last().textContent();
      assert.ok(partial.length > 3);
      conversation.push({ role: "user", content: "Tell me everything" }, { role: "assistant", content: partial });
      conversation.push({ role: "user", content: "ok" });
      assert.equal(await say("ok"), await nativeReply(conversation));
      assert.deepEqual(errors, []);
    } finally {
      await p.close();
      plain.proc.kill("SIGKILL");
    }
  });
} finally {
  await browser.close();
  web.kill("SIGKILL");
  server.proc.kill("SIGKILL");
}
console.log(failed() ? `${failed()} check(s) failed` : "all checks passed");
process.exit(failed() ? 1 : 0);
