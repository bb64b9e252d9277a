// Hugging Face tokenizer.json files through osprey against @lenml/tokenizers
// (a JavaScript port of the tokenizers library) on the real files of Llama 3,
// Qwen3 (NFC), Gemma 3 (byte fallback, 6,000 added tokens), Mistral (the
// package named llama2; Prepend + byte fallback) and gpt-oss (o200k): the same
// ids for every text of a varied corpus (multilingual text, code, whitespace
// runs, emoji, combining marks, special-token text), the test inputs of every
// vocabulary in ../shared/testdata, and seeded random strings. And the
// tokenizer.json `synth --format hf` writes, read by the reference, against
// osprey reading the GGUF vocabulary it came from.
//   usage: node tokenizer_json_test.mjs OSPREY WORKDIR [TESTDATA]
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";

let TokenizerLoader;
try {
  ({ TokenizerLoader } = await import("@lenml/tokenizers"));
} catch {
  console.log("SKIP: tests/js has no node_modules (scripts/setup.sh runs npm ci there)");
  process.exit(77);
}
const [osprey, workdir, testdata] = process.argv.slice(2);
fs.mkdirSync(workdir, { recursive: true });

const corpus = [
  "Hello world!", "  leading spaces", "trailing   ", "tabs\tand\nnewlines\r\n\n\n", "naïve café résumé",
  "e\u0301 vs \u00e9 (NFC makes them one)", "日本語のテキストです。", "中文文本，标点符号！", "한국어 텍스트", "Ελληνικά κείμενο",
  "Русский текст", "עברית", "العربية", "हिन्दी पाठ", "ไทย", "emoji 🦊🔥👍🏽 👨‍👩‍👧 🇫🇷",
  "code: for (int i = 0; i < n; ++i) { x[i] = f(i); }", "def f(x):\n    return x**2\n\n\tpass",
  "numbers 1234567890 3.14159 1,000,000 ١٢٣", "URL https://example.com/a?b=c&d=e#frag", "I'm you're they'll we've it's IT'S",
  "ALLCAPS and MiXeD cases CamelCaseWord", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
  "<start_of_turn>user\nhi<end_of_turn>", "<s> </s> <unk> <pad>", "<|begin_of_text|><|start_header_id|>user<|end_header_id|>",
  "<|start|>user<|message|>hi<|end|>", "a\u0323\u0307 \u1100\u1161\u11A8 \u212B \u0958", "      ", "", "x",
  "\u2581 already a meta space \u2581\u2581", "mixed 日本 and English and 123", "<0x41> literal byte token text",
  "\ufeffBOM start", "zero\u200bwidth\u200djoiner", "\u00a0no-break\u3000ideographic space", "line\u2028separator",
  "<unused0> <mask> [multimodal]", "a".repeat(300), " ".repeat(50) + "x", "\n".repeat(20), "😀".repeat(30),
];
if (testdata)
  for (const f of fs.existsSync(path.join(testdata, "vocab")) ? fs.readdirSync(path.join(testdata, "vocab")) : [])
    if (f.endsWith(".inp"))
      corpus.push(...fs.readFileSync(path.join(testdata, "vocab", f), "utf8").split("\n__ggml_vocab_test__\n"));
// Seeded random strings over a pool of every kind of character above.
const pool = [..."abcXYZ019 \t\n.,;'\"!?-_()[]{}<>|/\\éèüñçßøåÆ日本語中文한국어ΑΩжЖ🦊🔥👍\u0301\u0308\u0323\u200b\u00a0\u2581"];
let seed = 12345;
const rand = (n) => ((seed = (seed * 1103515245 + 12345) % 2147483648), seed % n);
for (let i = 0; i < 300; i++) {
  let s = "";
  for (let j = rand(40); j >= 0; j--) s += pool[rand(pool.length)];
  corpus.push(s);
}
const jsonl = path.join(workdir, "corpus.jsonl");
fs.writeFileSync(jsonl, corpus.map((s) => JSON.stringify(s)).join("\n") + "\n");

// Also the tokenizer.json that `synth --format hf` writes for a GGUF vocabulary:
// the reference reading it must agree with osprey reading the GGUF file.
const exported = [];
for (const preset of ["tiny-llama3", "tiny-qwen3"]) {
  const gguf = path.join(workdir, `${preset}.gguf`), folder = path.join(workdir, `${preset}-hf`);
  execFileSync(osprey, ["synth", "--preset", preset, "--type", "q8_0", "-o", gguf], { stdio: "ignore" });
  execFileSync(osprey, ["synth", "--preset", preset, "--type", "q8_0", "--format", "hf", "-o", folder], { stdio: "ignore" });
  exported.push({ name: `${preset} (exported)`, dir: folder, model: gguf });
}

let failures = 0;
const packages = ["llama3", "qwen3", "gemma3", "llama2", "gptoss"].map((name) => ({
  name,
  // The package's own copy of the model's files (its exports hide them from require.resolve).
  dir: path.join(path.dirname(new URL(import.meta.url).pathname), "node_modules", "@lenml", `tokenizer-${name}`, "models"),
}));
for (const { name, dir, model } of [...packages, ...exported]) {
  const tok = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
    tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
  });
  let lines;
  try {
    lines = execFileSync(osprey, ["tokenize", "-m", model ?? dir, "--parse-special", "--json-lines", jsonl],
                         { encoding: "utf8", maxBuffer: 1 << 28 }).trimEnd().split("\n");
  } catch (e) {
    failures++;
    console.log(`FAIL ${name}: osprey tokenize failed: ${String(e.stderr).slice(0, 500)}`);
    continue;
  }
  let differ = 0;
  corpus.forEach((text, i) => {
    const want = JSON.stringify(tok.encode(text, { add_special_tokens: true }));
    const got = JSON.stringify(JSON.parse(lines[i] ?? "null"));
    if (want !== got && differ++ < 3)
      console.log(`  ${name} text ${i} ${JSON.stringify(text).slice(0, 80)}\n    want ${want.slice(0, 300)}\n    got  ${got.slice(0, 300)}`);
  });
  if (differ > 0) failures++;
  console.log(`${differ === 0 ? "ok  " : "FAIL"} ${name}: ${corpus.length - differ} of ${corpus.length} texts give the same ids`);
}
process.exit(failures === 0 ? 0 : 1);
