// LoRA adapters through osprey serve: requests choose adapters and scales
// with "lora": [{"id", "scale"}] (llama-server's form); an empty list is the
// base model exactly, as a server without adapters gives it; the server's
// --lora FILE:SCALE is the default; requests with different adapters
// running at once get what each gets alone; GET /lora-adapters lists them;
// the openai client's chat and responses calls carry the field; and every
// mistake is refused by field name.
// Usage: node lora_test.mjs OSPREY_BINARY WORKDIR
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import path from "node:path";
import { checks, openaiOrSkip, startServer, synthModel } from "./osprey_server.mjs";

const OpenAI = await openaiOrSkip();
const [osprey, workdir] = process.argv.slice(2);
const model = synthModel(osprey, workdir, "tiny", "q8_0");
const adapter = (name, seed, type) => {
  const out = path.join(workdir, name);
  execFileSync(osprey, ["synth", "--lora", model, "--seed", String(seed), "--type", type, "-o", out], { stdio: "ignore" });
  return out;
};
const a0 = adapter("a0.gguf", 7, "f16"), a1 = adapter("a1.gguf", 8, "q8_0");
const { check, failed } = checks();

const base = await startServer(osprey, ["-m", model, "-P", "2", "-t", "2"]);
const lora = await startServer(osprey, ["-m", model, "-P", "4", "-t", "2", "--lora", a0, "--lora", `${a1}:0.5`]);
const post = (s, p, body) =>
  fetch(s.base + p, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
// Greedy text with every step's top-5 log-probabilities: the adapters move
// the numbers even where the synthetic model's greedy tokens stay the same.
const complete = async (s, extra = {}, prompt = "the adapter changes") => {
  const r = await post(s, "/v1/completions", { prompt, max_tokens: 8, temperature: 0, logprobs: 5, ...extra });
  const j = await r.json();
  assert.equal(r.status, 200, JSON.stringify(j));
  return JSON.stringify(j.choices[0].logprobs.top_logprobs);
};

try {
  const plain = await complete(base);
  const dflt = await complete(lora);
  await check("an empty list is the base model, bit for bit", async () => {
    assert.equal(await complete(lora, { lora: [] }), plain);
    assert.equal(await complete(lora, { lora: [{ id: 0, scale: 0 }, { id: 1, scale: 0 }] }), plain);
  });
  await check("without the field the --lora scales apply, and they change the output", async () => {
    assert.notEqual(dflt, plain);
    assert.equal(await complete(lora, { lora: [{ id: 0, scale: 1 }, { id: 1, scale: 0.5 }] }), dflt);
  });
  await check("unlisted adapters run at scale 0; scale defaults to 1", async () => {
    const only0 = await complete(lora, { lora: [{ id: 0 }] });
    assert.notEqual(only0, dflt);
    assert.notEqual(only0, plain);
    assert.equal(await complete(lora, { lora: [{ id: 0, scale: 1 }] }), only0);
  });
  await check("requests with different adapters at once each get what they get alone", async () => {
    const settings = [[], [{ id: 0 }], [{ id: 1, scale: -0.75 }], undefined];
    const prompts = ["one two three", "the adapter changes", "a longer prompt that takes a few more tokens"];
    const alone = [];
    for (const [i, l] of settings.entries()) alone.push(await complete(lora, l ? { lora: l } : {}, prompts[i % 3]));
    for (let round = 0; round < 2; round++) {
      const together = await Promise.all(settings.map((l, i) => complete(lora, l ? { lora: l } : {}, prompts[i % 3])));
      together.forEach((t, i) => assert.equal(t, alone[i], `request ${i} (round ${round})`));
    }
  });
  await check("GET /lora-adapters lists them by id with their scales", async () => {
    const list = await (await fetch(lora.base + "/lora-adapters")).json();
    assert.deepEqual(list.map((a) => [a.id, a.path, a.scale, a.rank]), [[0, a0, 1, 8], [1, a1, 0.5, 8]]);
    assert.deepEqual(await (await fetch(base.base + "/lora-adapters")).json(), []);
  });
  await check("the openai client's chat.completions and responses carry 'lora'", async () => {
    const client = new OpenAI({ baseURL: lora.base + "/v1", apiKey: "unused", maxRetries: 0 });
    const messages = [{ role: "user", content: "hello" }];
    const chat = async (l) =>
      JSON.stringify((await client.chat.completions.create({ model: "any", messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3, lora: l })).choices[0].logprobs);
    const off = await chat([]), on = await chat([{ id: 1, scale: 2 }]);
    assert.notEqual(off, on);
    assert.equal(await chat([{ id: 1, scale: 2 }]), on);
    const resp = await client.responses.create({ model: "any", input: "hello", max_output_tokens: 6, temperature: 0, lora: [] });
    assert.equal(resp.object, "response");  // "incomplete" at max_output_tokens
    const stream = await client.responses.create({ model: "any", input: "hello", max_output_tokens: 6, temperature: 0, lora: [{ id: 0 }], stream: true });
    let done = false;
    for await (const ev of stream) done ||= ev.type === "response.completed" || ev.type === "response.incomplete";
    assert.ok(done);
  });
  await check("mistakes are refused by field name", async () => {
    const cases = [
      [lora, { lora: { id: 0 } }, "lora", "must be an array"],
      [lora, { lora: [{ id: 2 }] }, "lora[0].id", "between 0 and 1"],
      [lora, { lora: [{ scale: 1 }] }, "lora[0].id", "required"],
      [lora, { lora: [{ id: 0 }, { id: 0 }] }, "lora[1].id", "listed twice"],
      [lora, { lora: [{ id: 0, scale: "1" }] }, "lora[0].scale", "must be a number"],
      [lora, { lora: [{ id: 0, scale: 1e9 }] }, "lora[0].scale", "between"],
      [lora, { lora: [7] }, "lora[0]", "object"],
      [base, { lora: [{ id: 0 }] }, "lora", "no LoRA adapters"],
    ];
    for (const [s, extra, param, words] of cases) {
      const r = await post(s, "/v1/completions", { prompt: "x", max_tokens: 1, ...extra });
      const j = await r.json();
      assert.equal(r.status, 400, JSON.stringify(extra));
      assert.equal(j.error.param, param, JSON.stringify(j));
      assert.ok(j.error.message.includes(words), j.error.message);
    }
  });
  await check("a file that is not an adapter for the model stops serve with its name", async () => {
    const bert = synthModel(osprey, workdir, "tiny-bert", "q8_0");
    const r = spawnSync(osprey, ["serve", "-m", model, "--port", "0", "--lora", bert], { encoding: "utf8", timeout: 30000 });
    assert.notEqual(r.status, 0);
    assert.ok(r.stderr.includes(bert) && r.stderr.includes("not an adapter"), r.stderr);
  });
} finally {
  base.proc.kill();
  lora.proc.kill();
}
process.exit(failed() ? 1 : 0);
