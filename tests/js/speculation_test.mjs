// `osprey serve --spec ngram` and `--draft-model`: speculative decoding
// inside the continuous-batching scheduler. Eight requests at once (greedy,
// and sampled with seeds; chat and completions; streamed and not) get exactly
// the replies a server without speculation gives, and /metrics counts drafted
// and accepted tokens. Synthesized models fall into repeating runs, which
// prompt lookup drafts; the draft model is the same model in another type.
// A draft model with another vocabulary is refused, naming the difference.
//   usage: node speculation_test.mjs OSPREY WORKDIR
import { execFileSync } from "node:child_process";
import { metric, openaiOrSkip, startServer, synthModel } from "./osprey_server.mjs";

const OpenAI = await openaiOrSkip();
const [osprey, workdir] = process.argv.slice(2);
const model = synthModel(osprey, workdir, "tiny", "q8_0");
const draft = synthModel(osprey, workdir, "tiny", "q4_0");
const otherVocab = synthModel(osprey, workdir, "tiny-qwen2", "q4_0");

const prompts = ["once upon a time", "a b c d e f g", "the cat sat on the mat", "hello there", "x", "fox and hound",
                 "one two one two", "the end"];
function requests() {
  return prompts.map((p, i) => ({
    kind: i % 3 === 0 ? "chat" : "completion",
    stream: i % 4 === 1,
    body: { model: "m", max_tokens: 160, temperature: i % 2 ? 0.8 : 0, seed: 100 + i, ignore_eos: true,
            ...(i % 3 === 0 ? { messages: [{ role: "user", content: p }] } : { prompt: p }) },
  }));
}

async function send(client, r) {
  if (r.kind === "chat") {
    if (!r.stream) return (await client.chat.completions.create(r.body)).choices[0].message.content;
    let text = "";
    for await (const c of await client.chat.completions.create({ ...r.body, stream: true })) text += c.choices[0]?.delta?.content ?? "";
    return text;
  }
  if (!r.stream) return (await client.completions.create(r.body)).choices[0].text;
  let text = "";
  for await (const c of await client.completions.create({ ...r.body, stream: true })) text += c.choices[0]?.text ?? "";
  return text;
}

async function replies(extra) {
  const server = await startServer(osprey, ["-m", model, "-P", "4", "-c", "256", "-t", "2", ...extra]);
  try {
    const client = new OpenAI({ baseURL: server.base + "/v1", apiKey: "unused", maxRetries: 0 });
    const texts = await Promise.all(requests().map((r) => send(client, r)));
    const drafted = await metric(server.base, "osprey_speculative_draft_tokens_total");
    const accepted = await metric(server.base, "osprey_speculative_accepted_tokens_total");
    return { texts, drafted, accepted, log: server.log() };
  } finally {
    server.proc.kill("SIGTERM");
    await new Promise((r) => server.proc.on("exit", r));
  }
}

let failures = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
};
const plain = await replies([]);
const spec = await replies(["--spec", "ngram", "--draft-max", "8"]);
for (let i = 0; i < prompts.length; i++)
  check(spec.texts[i] === plain.texts[i], `request ${i} (${requests()[i].kind}${requests()[i].stream ? ", streamed" : ""}, ` +
        `temperature ${requests()[i].body.temperature}) replies the same with speculation: ${JSON.stringify(spec.texts[i].slice(0, 40))}`);
check(plain.drafted === 0 && plain.accepted === 0, `without --spec nothing is drafted (${plain.drafted}, ${plain.accepted})`);
check(spec.accepted > 50 && spec.accepted <= spec.drafted,
      `with --spec ngram /metrics counts ${spec.drafted} drafted and ${spec.accepted} accepted tokens`);
const drafted = await replies(["--draft-model", draft]);
for (let i = 0; i < prompts.length; i++)
  check(drafted.texts[i] === plain.texts[i], `request ${i} replies the same with a draft model`);
check(drafted.accepted > 50 && drafted.accepted <= drafted.drafted,
      `with --draft-model /metrics counts ${drafted.drafted} drafted and ${drafted.accepted} accepted tokens`);
check(/drafting with .*tiny-q4_0\.gguf/.test(drafted.log), "the banner names the draft model");
for (const [args, pattern, what] of [
  [["--draft-model", otherVocab], /draft model.*vocabulary|vocabulary.*draft model/, "a draft model with another vocabulary"],
  [["--draft-model", draft, "--spec", "ngram"], /--spec|--draft-model/, "--draft-model with --spec ngram"],
  [["--draft-model", "/nonexistent.gguf"], /nonexistent/, "a missing draft model"],
]) {
  try {
    execFileSync(osprey, ["serve", "-m", model, "--port", "0", ...args], { stdio: "pipe", timeout: 60000 });
    check(false, `${what} was accepted`);
  } catch (e) {
    check(pattern.test(String(e.stderr)), `${what} is refused with a clear error: ${String(e.stderr).trim().split("\n").pop()}`);
  }
}
// A bad mode is refused by name.
try {
  execFileSync(osprey, ["serve", "-m", model, "--spec", "medusa"], { stdio: "pipe" });
  check(false, "--spec medusa was accepted");
} catch (e) {
  check(/--spec/.test(String(e.stderr)), "--spec medusa is refused naming the option");
}
process.exit(failures ? 1 : 0);
