// `osprey serve --cache-type-k/-v` with a memory-sized pool (--kv-size 256KiB):
// a smaller cache type holds proportionally more positions and so more full
// contexts at once (the banner and /metrics say how many), and each type
// serves requests whose greedy replies do not depend on their neighbours.
//   usage: node kv_cache_types_test.mjs OSPREY WORKDIR
import { execFileSync } from "node:child_process";
import { metric, openaiOrSkip, startServer, synthModel } from "./osprey_server.mjs";

const OpenAI = await openaiOrSkip();
const [osprey, workdir] = process.argv.slice(2);
const model = synthModel(osprey, workdir, "tiny-qwen3", "q8_0");

// Bytes per value of each type: fp16 2, q8_0 34/32, q4_0 18/32.
const types = [
  { type: "f16", perValue: 2 },
  { type: "q8_0", perValue: 34 / 32 },
  { type: "q4_0", perValue: 18 / 32 },
];
const budget = 256 * 1024;
let failures = 0;
const tokens = {};
for (const t of types) {
  const server = await startServer(osprey, ["-m", model, "-P", "4", "-c", "128", "-t", "2", "--kv-size", "256KiB",
                                            "--cache-type-k", t.type, "--cache-type-v", t.type]);
  try {
    const pool = await metric(server.base, "osprey_kv_tokens_total");
    const bytes = await metric(server.base, "osprey_kv_cache_bytes");
    if (!(bytes <= budget && bytes > budget * 0.9)) throw new Error(`the pool takes ${bytes} bytes of a ${budget} budget`);
    tokens[t.type] = pool;
    for (let i = 0; i < 50 && !/ready:/.test(server.log()); i++) await new Promise((r) => setTimeout(r, 100));
    const banner = server.log().match(/KV pool (\d+) tokens \((\d+) full contexts\).* as (\S+) keys and (\S+) values/);
    if (!banner) throw new Error("the banner does not describe the pool:\n" + server.log());
    if (Number(banner[1]) !== pool || banner[3] !== t.type || banner[4] !== t.type)
      throw new Error(`banner ${banner[0]} disagrees with /metrics (${pool} tokens) or the type ${t.type}`);
    if (Number(banner[2]) !== Math.floor(pool / 128)) throw new Error(`banner ${banner[0]}: ${pool} / 128 full contexts`);
    const client = new OpenAI({ baseURL: server.base + "/v1", apiKey: "unused", maxRetries: 0 });
    const request = { model: "m", messages: [{ role: "user", content: "Tell me about foxes." }], max_tokens: 10, temperature: 0 };
    const alone = (await client.chat.completions.create(request)).choices[0].message.content;
    const together = await Promise.all([1, 2, 3].map(() => client.chat.completions.create(request)));
    for (const r of together)
      if (r.choices[0].message.content !== alone) throw new Error("a reply beside others differs from the one alone");
    console.log(`ok   ${t.type}: pool ${pool} tokens in ${bytes} bytes, ${banner[2]} full contexts; ${JSON.stringify(alone)}`);
  } catch (e) {
    failures++;
    console.log(`FAIL ${t.type}: ${e.stack ?? e}\n${server.log()}`);
  }
  server.proc.kill("SIGTERM");
  await new Promise((r) => server.proc.on("exit", r));
}
// The same memory holds as many more positions as the type is smaller (to
// within one block of rounding).
for (const t of types.slice(1)) {
  const want = (tokens.f16 * 2) / t.perValue;
  if (!(Math.abs(tokens[t.type] - want) <= 16 * (2 / t.perValue) + 16)) {
    failures++;
    console.log(`FAIL ${t.type} holds ${tokens[t.type]} tokens where f16 holds ${tokens.f16}; expected about ${want.toFixed(0)}`);
  } else {
    console.log(`ok   ${t.type} holds ${(tokens[t.type] / tokens.f16).toFixed(2)}x the positions of f16`);
  }
}
// A bad type is refused by name before anything starts.
try {
  execFileSync(osprey, ["serve", "-m", model, "--cache-type-k", "q3_k"], { stdio: "pipe" });
  failures++;
  console.log("FAIL --cache-type-k q3_k was accepted");
} catch (e) {
  const err = String(e.stderr);
  if (!/q3_k/.test(err) || !/q8_0/.test(err)) {
    failures++;
    console.log("FAIL the refusal of q3_k does not name it and the types: " + err);
  } else console.log("ok   --cache-type-k q3_k refused: " + err.trim());
}
for (const bad of ["12 parsecs", "-1GiB", "2.5", "0GiB"]) {
  try {
    execFileSync(osprey, ["serve", "-m", model, "--kv-size", bad], { stdio: "pipe" });
    failures++;
    console.log(`FAIL --kv-size ${bad} was accepted`);
  } catch (e) {
    if (!String(e.stderr).includes("--kv-size")) {
      failures++;
      console.log(`FAIL --kv-size ${bad}: ${e.stderr}`);
    } else console.log(`ok   --kv-size ${JSON.stringify(bad)} refused`);
  }
}
process.exit(failures === 0 ? 0 : 1);
