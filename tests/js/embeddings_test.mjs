// POST /v1/embeddings through the official openai client's embeddings.create:
// an encoder (bert) and a decoder (last-token pooling) give the vectors
// `osprey embed` gives for the same texts; strings, arrays of strings and
// token arrays; float and base64; dimensions; many inputs while a chat
// reply streams beside them; clear errors for what cannot be served; and
// POST /v1/rerank with a cross-encoder reranker.
// Usage: node embeddings_test.mjs OSPREY_BINARY WORKDIR
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { checks, openaiOrSkip, startServer, synthModel } from "./osprey_server.mjs";

const OpenAI = await openaiOrSkip();
const [osprey, workdir] = process.argv.slice(2);
const bert = synthModel(osprey, workdir, "tiny-bert", "q8_0");
const decoder = synthModel(osprey, workdir, "tiny", "q8_0");
const { check, failed } = checks();

const texts = ["the quick brown fox", "Jumps over the lazy dog!", "tokens, and more tokens", "x"];
const cliVectors = (model) =>
  JSON.parse(execFileSync(osprey, ["embed", "-m", model, "-t", "2", ...texts], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
const close = (a, b, tol = 1e-5) => a.length === b.length && a.every((v, i) => Math.abs(v - b[i]) <= tol);

for (const [name, model] of [["bert", bert], ["decoder", decoder]]) {
  const s = await startServer(osprey, ["-m", model, "-P", "4", "-t", "2"]);
  const client = new OpenAI({ baseURL: s.base + "/v1", apiKey: "unused", maxRetries: 0 });
  try {
    const want = cliVectors(model);
    await check(`${name}: embeddings.create gives osprey embed's vectors`, async () => {
      const r = await client.embeddings.create({ model: "any", input: texts, encoding_format: "float" });
      assert.equal(r.object, "list");
      assert.equal(r.data.length, texts.length);
      r.data.forEach((d, i) => {
        assert.equal(d.index, i);
        assert.ok(close(d.embedding, want[i]), `input ${i} differs from osprey embed`);
        const norm = Math.hypot(...d.embedding);
        assert.ok(Math.abs(norm - 1) < 1e-4, `input ${i} has norm ${norm}`);
      });
      assert.ok(r.usage.prompt_tokens > texts.length && r.usage.total_tokens === r.usage.prompt_tokens);
    });
    await check(`${name}: the client's default base64 decodes to the same floats; one string alone too`, async () => {
      const r = await client.embeddings.create({ model: "any", input: texts[1] });  // the client asks for base64
      assert.equal(r.data.length, 1);
      assert.ok(close(r.data[0].embedding, want[1]), "base64 vector differs");
    });
    await check(`${name}: token arrays embed as their text does`, async () => {
      const ids = (await (await fetch(s.base + "/tokenize", { method: "POST", body: JSON.stringify({ content: texts[0], add_special: true }) })).json()).tokens;
      const one = await client.embeddings.create({ model: "any", input: ids, encoding_format: "float" });
      assert.ok(close(one.data[0].embedding, want[0]), "token array differs from its text");
      const two = await client.embeddings.create({ model: "any", input: [ids, ids], encoding_format: "float" });
      assert.equal(two.data.length, 2);
      assert.ok(close(two.data[1].embedding, want[0]));
    });
    await check(`${name}: 64 inputs in one request, in order, equal to each alone`, async () => {
      const many = Array.from({ length: 64 }, (_, i) => texts[i % texts.length]);
      const r = await client.embeddings.create({ model: "any", input: many, encoding_format: "float" });
      assert.equal(r.data.length, 64);
      r.data.forEach((d, i) => assert.ok(close(d.embedding, want[i % texts.length]), `input ${i}`));
    });
    await check(`${name}: refusals name the field`, async () => {
      const post = async (body) => {
        const res = await fetch(s.base + "/v1/embeddings", { method: "POST", body: JSON.stringify(body) });
        return { status: res.status, error: (await res.json()).error };
      };
      for (const [body, param] of [
        [{}, "input"], [{ input: "" }, "input"], [{ input: [] }, "input"], [{ input: ["ok", 5] }, "input[1]"],
        [{ input: [[1, -2]] }, "input[0][1]"], [{ input: "ok", encoding_format: "hex" }, "encoding_format"],
        [{ input: "ok", dimensions: 0 }, "dimensions"], [{ input: "ok", dimensions: 16 }, "dimensions"],
        [{ input: "word ".repeat(5000) }, "input"],
      ]) {
        const r = await post(body);
        assert.equal(r.status, 400, JSON.stringify(body).slice(0, 60));
        assert.equal(r.error.param, param, JSON.stringify(body).slice(0, 60) + ": " + r.error.message);
      }
    });
    if (name === "bert") {
      await check("bert: chat completions are refused with the reason", async () => {
        const res = await fetch(s.base + "/v1/chat/completions", { method: "POST", body: JSON.stringify({ messages: [{ role: "user", content: "hi" }] }) });
        assert.equal(res.status, 400);
        assert.match((await res.json()).error.message, /encoder.*embeddings/);
      });
    } else {
      await check("decoder: embeddings while a chat reply streams beside them", async () => {
        const stream = await client.chat.completions.create({ model: "any", messages: [{ role: "user", content: "count" }], max_tokens: 48, stream: true, temperature: 0 });
        const reply = (async () => { let n = 0; for await (const c of stream) n += c.choices[0]?.delta?.content ? 1 : 0; return n; })();
        const r = await client.embeddings.create({ model: "any", input: texts, encoding_format: "float" });
        r.data.forEach((d, i) => assert.ok(close(d.embedding, want[i]), `input ${i} changed beside a stream`));
        assert.ok((await reply) > 0);
      });
    }
  } finally {
    s.proc.kill();
  }
}
// POST /v1/rerank with a cross-encoder: the scores `osprey embed --rerank`
// gives, best first, top_n and return_documents; the wrong model refuses.
const reranker = synthModel(osprey, workdir, "tiny-bert-rerank", "q8_0");
{
  const query = "what is a cat";
  const docs = ["a cat is an animal", "stocks fell today", "cats", "the weather is fine"];
  const want = JSON.parse(execFileSync(osprey, ["embed", "-m", reranker, "-t", "2", "--rerank", query, ...docs], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }));
  const r = await startServer(osprey, ["-m", reranker, "-t", "2"]);
  const post = async (p, body) => {
    const res = await fetch(r.base + p, { method: "POST", body: JSON.stringify(body) });
    return { status: res.status, body: await res.json() };
  };
  try {
    await check("rerank: scores equal osprey embed --rerank's, best first", async () => {
      const { status, body } = await post("/v1/rerank", { model: "any", query, documents: docs });
      assert.equal(status, 200);
      assert.equal(body.results.length, docs.length);
      for (const x of body.results) assert.ok(Math.abs(x.relevance_score - want[x.index]) < 1e-5, `document ${x.index}`);
      for (let i = 1; i < body.results.length; i++) assert.ok(body.results[i - 1].relevance_score >= body.results[i].relevance_score);
      assert.ok(body.usage.prompt_tokens > 0);
    });
    await check("rerank: top_n, return_documents, objects with text, and /rerank", async () => {
      const { body } = await post("/rerank", { query, documents: docs.map((text) => ({ text })), top_n: 2, return_documents: true });
      assert.equal(body.results.length, 2);
      assert.equal(body.results[0].document.text, docs[body.results[0].index]);
    });
    await check("rerank: refusals name the field; embeddings on a reranker say where to go", async () => {
      for (const [b, param] of [[{ documents: ["a"] }, "query"], [{ query: "q", documents: [] }, "documents"],
        [{ query: "q", documents: ["a", 3] }, "documents[1]"], [{ query: "q", documents: ["a"], top_n: 0 }, "top_n"]]) {
        const { status, body } = await post("/v1/rerank", b);
        assert.equal(status, 400);
        assert.equal(body.error.param, param, body.error.message);
      }
      const e = await post("/v1/embeddings", { input: "x" });
      assert.equal(e.status, 400);
      assert.match(e.body.error.message, /reranker.*\/v1\/rerank/);
    });
  } finally {
    r.proc.kill();
  }
}

const s = await startServer(osprey, ["-m", bert, "-t", "1", "--matryoshka"]);
await check("an embedding model refuses /v1/rerank with the reason", async () => {
  const res = await fetch(s.base + "/v1/rerank", { method: "POST", body: JSON.stringify({ query: "q", documents: ["a"] }) });
  assert.equal(res.status, 400);
  assert.match((await res.json()).error.message, /not a reranker/);
});
await check("--matryoshka: dimensions cuts and renormalises", async () => {
  const res = await fetch(s.base + "/v1/embeddings", { method: "POST", body: JSON.stringify({ input: texts[0], dimensions: 16 }) });
  const v = (await res.json()).data[0].embedding;
  assert.equal(v.length, 16);
  assert.ok(Math.abs(Math.hypot(...v) - 1) < 1e-5);
});
s.proc.kill();
process.exit(failed() ? 1 : 0);
