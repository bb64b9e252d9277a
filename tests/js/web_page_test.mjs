// The chat page at /, driven in Debian's chromium (headless, through
// playwright-core): it asks for the API key, streams a reply token by token,
// stops it (and the server stops generating), shows time to first token and
// tokens/s, sends the whole conversation with the system prompt and settings,
// keeps conversations across a reload and renders Markdown. A screenshot is
// kept as an artifact (WORKDIR/chat-page.png). Skips (77) only when playwright-core is not
// installed or chromium cannot start.
// Usage: node web_page_test.mjs OSPREY WORKDIR
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { checks, launchChromiumOrSkip, startServer, synthModel } from "./osprey_server.mjs";

const [osprey, workdir] = process.argv.slice(2);
// SmolLM2-135M's shape on one thread streams a few hundred tokens a second:
// slow enough that Stop lands mid-reply, where the tiny preset would finish first.
const model = synthModel(osprey, workdir, "smollm2-135m", "q8_0");
const KEY = "page-test-key";

const { check, failed } = checks();

const server = await startServer(osprey, ["-m", model, "--api-key", KEY, "-c", "4096", "-P", "2", "-t", "1"]);
const authed = { headers: { Authorization: "Bearer " + KEY } };

// Over plain HTTP first: what the page is served as, with and without the key.
await check("the page and its files are served without the key, with a policy that keeps them local", async () => {
  const page = await fetch(server.base + "/");
  assert.equal(page.status, 200);
  assert.match(page.headers.get("content-type"), /^text\/html/);
  assert.match(page.headers.get("content-security-policy"), /default-src 'none'/);
  assert.match(page.headers.get("content-security-policy"), /connect-src 'self'/);
  const html = await page.text();
  const files = [...html.matchAll(/(?:src|href)="(\/web\/[^"]+)"/g)].map((m) => m[1]);
  assert.ok(files.length >= 2, html);
  for (const f of files) {
    const r = await fetch(server.base + f);
    assert.equal(r.status, 200, f);
    assert.match(r.headers.get("content-type"), f.endsWith(".css") ? /^text\/css/ : /^text\/javascript/, f);
    assert.ok(!/https?:\/\//.test(await r.text()) || f.endsWith("markdown.js"), `${f} refers to another site`);
  }
  assert.equal((await fetch(server.base + "/v1/models")).status, 401);
  assert.equal((await fetch(server.base + "/web/nothing.js")).status, 401);  // not a page file: the API's rules
  assert.equal((await fetch(server.base + "/", { method: "POST" })).status, 401);
});

await check("--no-web-page leaves / to the API (404)", async () => {
  const bare = await startServer(osprey, ["-m", model, "--no-web-page"]);
  try {
    assert.equal((await fetch(bare.base + "/")).status, 404);
    assert.equal((await fetch(bare.base + "/web/chat.js")).status, 404);
    assert.match(bare.log(), /listening on/);
    assert.doesNotMatch(bare.log(), /chat page/);
  } finally {
    bare.proc.kill("SIGKILL");
  }
});

const browser = await launchChromiumOrSkip(() => {
  server.proc.kill("SIGKILL");
  return failed() ? 1 : 77;
});

const page = await browser.newPage({ viewport: { width: 1100, height: 760 } });
const problems = [];  // script errors and policy violations in the page
page.on("pageerror", (e) => problems.push("page error: " + e.message));
page.on("console", (m) => {
  // The 401s the page answers by asking for the key, and the 400 the error check provokes, are expected.
  if (m.type() === "error" && !/status of 40[01]/.test(m.text())) problems.push("console: " + m.text());
});
const sent = [];  // the bodies of the page's chat requests
page.on("request", (r) => {
  if (r.url().endsWith("/v1/chat/completions")) sent.push(JSON.parse(r.postData()));
});
const lastReply = () => page.locator(".message.assistant").last();

await check("the page asks for the API key, refuses a wrong one, then shows the model", async () => {
  await page.goto(server.base + "/");
  await page.locator("#key-form").waitFor({ state: "visible" });
  await page.fill("#api-key", "wrong");
  await page.click("#save-key");
  await page.locator("#key-error", { hasText: "refused" }).waitFor();
  await page.fill("#api-key", KEY);
  await page.click("#save-key");
  await page.waitForSelector("body[data-ready=true]");
  assert.equal(await page.locator("#key-form").isVisible(), false);
  assert.equal(await page.textContent("#model-name"), path.basename(model));
});

await check("a reply streams in token by token, and Stop ends it on the page and on the server", async () => {
  await page.click("#settings-toggle");
  await page.fill("#system-prompt", "You are terse.");
  await page.fill("#max-tokens", "3000");
  await page.fill("#seed", "7");
  // ignore_eos keeps this reply going long enough to be stopped.
  await page.fill("#extra-fields", '{"ignore_eos": true}');
  await page.click("#settings-toggle");
  await page.fill("#prompt", "Tell me a long story.");
  await page.press("#prompt", "Enter");
  await page.locator("#stop").waitFor({ state: "visible" });
  // Watch the reply grow: several different lengths before it ends.
  const lengths = new Set();
  const t0 = Date.now();
  while (lengths.size < 4 && Date.now() - t0 < 60000) {
    const n = (await lastReply().locator(".content").textContent()).length;
    if (n > 0) lengths.add(n);
    await page.waitForTimeout(15);
  }
  assert.ok(lengths.size >= 4, `the reply did not arrive in pieces: lengths seen ${[...lengths]}`);
  await page.click("#stop");
  await page.locator("#send").waitFor({ state: "visible" });
  assert.equal(await page.locator("#stop").isVisible(), false);
  const stats = await lastReply().locator(".stats").textContent();
  assert.match(stats, /first token \d+\.\d\d s/);
  assert.match(stats, /stopped/);
  const stoppedAt = (await lastReply().locator(".content").textContent()).length;
  // The server notices the closed stream and frees the sequence.
  let running = 1;
  for (let i = 0; i < 100 && running !== 0; i++) {
    const text = await (await fetch(server.base + "/metrics", authed)).text();
    running = Number(text.match(/^osprey_running_sequences (\S+)$/m)[1]);
    if (running !== 0) await new Promise((r) => setTimeout(r, 50));
  }
  assert.equal(running, 0, "the server is still generating the stopped reply");
  await page.waitForTimeout(300);
  assert.equal((await lastReply().locator(".content").textContent()).length, stoppedAt, "text arrived after Stop");
});

await check("a finished reply shows time to first token and tokens/s; the request carries the conversation", async () => {
  await page.click("#settings-toggle");
  // Still ignore_eos: the reply depends on the stopped one before it, and must not end after one token.
  await page.fill("#max-tokens", "12");
  await page.click("#settings-toggle");
  await page.fill("#prompt", "And a short one?");
  await page.click("#send");
  await page.locator("#stop").waitFor({ state: "hidden" });
  await lastReply().locator(".stats", { hasText: "tokens/s" }).waitFor({ timeout: 20000 }).catch(async (e) => {
    throw new Error(`no tokens/s under the reply: ${JSON.stringify(await lastReply().innerText())}\n${e.message}`);
  });
  const stats = await lastReply().locator(".stats").textContent();
  assert.match(stats, /first token \d+\.\d\d s · 12 tokens · \d+\.\d tokens\/s · finish: length/);
  const body = sent.at(-1);
  assert.equal(body.stream, true);
  assert.equal(body.max_tokens, 12);
  assert.equal(body.seed, 7);
  assert.equal(body.ignore_eos, true);
  assert.deepEqual(body.messages.map((m) => m.role), ["system", "user", "assistant", "user"]);
  assert.equal(body.messages[0].content, "You are terse.");
  assert.equal(body.messages[3].content, "And a short one?");
  assert.ok(body.messages[2].content.length > 0, "the stopped reply's text is part of the history");
});

await check("bad extra fields are named in the settings, and nothing is sent", async () => {
  const n = sent.length;
  await page.click("#settings-toggle");
  await page.fill("#extra-fields", "{not json");
  await page.fill("#prompt", "Hello?");
  await page.click("#send");
  await page.locator("#settings-error", { hasText: "not a JSON object" }).waitFor();
  assert.equal(sent.length, n);
  await page.fill("#extra-fields", "");
  await page.click("#settings-toggle");
  await page.fill("#prompt", "");
});

await check("a server error shows in the reply", async () => {
  await page.click("#settings-toggle");
  await page.fill("#extra-fields", '{"temperature": "hot"}');
  await page.click("#settings-toggle");
  await page.fill("#prompt", "Error please");
  await page.click("#send");
  await page.locator(".message.assistant.failed", { hasText: "temperature" }).waitFor();
  await page.click("#settings-toggle");
  await page.fill("#extra-fields", "");
  await page.click("#settings-toggle");
});

await check("conversations survive a reload, and stored replies render as Markdown", async () => {
  await page.evaluate(() => {
    const list = JSON.parse(localStorage.getItem("osprey.conversations"));
    list.push({ id: "md", title: "Markdown sample", messages: [
      { role: "user", content: "show me" },
      { role: "assistant", content: "# Plan\n**bold** and `code`\n\n- one\n- two\n\n```js\nlet x = 1 < 2;\n```\n<script>window.pwned = 1</script>" },
    ] });
    localStorage.setItem("osprey.conversations", JSON.stringify(list));
  });
  await page.reload();
  await page.waitForSelector("body[data-ready=true]");  // the stored key is used, no form
  assert.equal(await page.locator("#key-form").isVisible(), false);
  const titles = await page.locator("#conversations li button.open").allTextContents();
  assert.ok(titles.includes("Tell me a long story."), titles.join(", "));
  await page.click("#conversations li button.open >> text=Markdown sample");
  const reply = lastReply().locator(".content");
  assert.equal(await reply.locator("h1").textContent(), "Plan");
  assert.equal(await reply.locator("strong").textContent(), "bold");
  assert.equal(await reply.locator("li").count(), 2);
  assert.equal(await reply.locator("pre code").textContent(), "let x = 1 < 2;");
  assert.equal(await reply.locator("script").count(), 0);
  assert.equal(await page.evaluate(() => window.pwned), undefined);
  await page.click("#conversations li button.open >> text=Tell me a long story.");
  assert.equal(await page.locator(".message").count(), 6);
});

await check("the page ran without script errors or policy violations", async () => {
  assert.deepEqual(problems, []);
});

const shot = path.join(workdir, "chat-page.png");
await page.screenshot({ path: shot });
console.log(`     screenshot: ${shot} (${fs.statSync(shot).size} bytes)`);
await browser.close();
server.proc.kill("SIGKILL");
if (failed()) {
  console.log(`${failed()} failed\n--- server log ---\n${server.log().slice(-3000)}`);
  process.exit(1);
}
