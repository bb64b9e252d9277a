#include <algorithm>
#include <cstdio>
#include <fstream>
#include <random>
#include <unordered_set>

#include "cli/synth.h"
#include "cli/commands.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {

namespace {

// Letters drawn with English frequencies, so made-up words look word-like.
char random_letter(std::mt19937_64& rng) {
  static const char kLetters[] = "eeeeeeeeeeeettttttttaaaaaaaooooooiiiiiinnnnnnsssssshhhhhrrrrrddddlllluuucccmmwwffggyyppbbvkjxqz";
  return kLetters[rng() % (sizeof(kLetters) - 1)];
}

// Grows `count` new tokens, each an existing word token plus one letter, so
// every token is reachable by merging (SPM) or has a merge rule (BPE).
template <typename Add>
void grow_words(std::vector<std::string>& pool, std::unordered_set<std::string>& seen, int64_t count,
                std::mt19937_64& rng, Add add) {
  int64_t made = 0, attempts = 0;
  while (made < count && attempts < count * 200) {
    ++attempts;
    // Prefer short stems: pick the shorter of two random pool entries.
    const std::string& a = pool[rng() % pool.size()];
    const std::string& b = pool[rng() % pool.size()];
    const std::string& stem = a.size() <= b.size() ? a : b;
    const std::string letter(1, random_letter(rng));
    const std::string word = stem + letter;
    if (!seen.insert(word).second) continue;
    add(stem, letter, word);
    pool.push_back(word);
    ++made;
  }
  // Any shortfall (tiny vocabularies run out of short words) is filled with numbered tokens.
  for (int64_t i = 0; made < count; ++i) {
    const std::string word = "tok" + std::to_string(i);
    if (!seen.insert(word).second) continue;
    add("", "", word);
    ++made;
  }
}

void spm_vocab(GgufWriter& w, const SynthPreset& p, std::mt19937_64& rng) {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int64_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    tokens.push_back(name);
    types.push_back(6);
  }
  std::unordered_set<std::string> seen(tokens.begin(), tokens.end());
  const std::string space = "\xE2\x96\x81";
  std::vector<std::string> pool = {space};
  // The preset's control tokens (Phi-3's <|end|>, Gemma's <end_of_turn>) go last, as in the real vocabularies' added tokens.
  const int64_t n_ordinary = p.n_vocab - static_cast<int64_t>(p.specials.size());
  auto add = [&](const std::string& s) {
    if (static_cast<int64_t>(tokens.size()) < n_ordinary && seen.insert(s).second) {
      tokens.push_back(s);
      types.push_back(1);
    }
  };
  add(space);
  for (char c = 33; c < 127; ++c) add(std::string(1, c));
  for (char c = 'a'; c <= 'z'; ++c) {
    add(space + c);
    pool.push_back(space + c);
  }
  grow_words(pool, seen, n_ordinary - static_cast<int64_t>(tokens.size()), rng,
             [&](const std::string&, const std::string&, const std::string& word) {
               tokens.push_back(word);
               types.push_back(1);
             });
  for (const char* special : p.specials) {
    tokens.push_back(special);
    types.push_back(3);
  }
  std::vector<double> scores(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) scores[i] = i < 259 ? 0.0 : -static_cast<double>(i);
  w.set("tokenizer.ggml.model", GgufValue::str("llama"));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  w.set("tokenizer.ggml.scores", GgufValue::float_array(scores));
  w.set("tokenizer.ggml.token_type", GgufValue::int_array(GgufType::kI32, types));
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(1));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(2));
  w.set("tokenizer.ggml.unknown_token_id", GgufValue::u32(0));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(true));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::boolean(false));
}

void bpe_vocab(GgufWriter& w, const SynthPreset& p, std::mt19937_64& rng) {
  std::vector<std::string> tokens, merges;
  for (int b = 0; b < 256; ++b) tokens.push_back(bpe_byte_to_text(static_cast<uint8_t>(b)));
  std::unordered_set<std::string> seen(tokens.begin(), tokens.end());
  const std::string space = bpe_byte_to_text(' ');
  std::vector<std::string> pool = {space};
  for (char c = 'a'; c <= 'z'; ++c) pool.emplace_back(1, c);
  const int64_t n_special = static_cast<int64_t>(p.specials.size());
  grow_words(pool, seen, p.n_vocab - 256 - n_special, rng,
             [&](const std::string& stem, const std::string& letter, const std::string& word) {
               tokens.push_back(word);
               if (!stem.empty()) merges.push_back(stem + " " + letter);
             });
  std::vector<int64_t> types(tokens.size(), 1);
  for (const char* s : p.specials) {
    tokens.emplace_back(s);
    types.push_back(3);
  }
  w.set("tokenizer.ggml.model", GgufValue::str("gpt2"));
  w.set("tokenizer.ggml.pre", GgufValue::str(p.pre));
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(tokens));
  w.set("tokenizer.ggml.token_type", GgufValue::int_array(GgufType::kI32, types));
  w.set("tokenizer.ggml.merges", GgufValue::string_array(merges));
  // Specials sit at the end: the first is BOS (and EOS unless a second exists).
  const auto first_special = static_cast<uint32_t>(p.n_vocab - n_special);
  const bool llama3 = std::string(p.pre) == "llama-bpe";
  w.set("tokenizer.ggml.bos_token_id", GgufValue::u32(first_special));
  w.set("tokenizer.ggml.eos_token_id", GgufValue::u32(llama3 ? first_special + 1 : first_special));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::boolean(llama3));
}

// BERT's special entries first, as its vocabularies have them.
const char* const kWordPieceSpecials[] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};

void write_wordpiece(GgufWriter& w, std::vector<std::string> tokens) {
  std::vector<int64_t> types(tokens.size(), 1);
  auto id_of = [&](const std::string& t) {
    return static_cast<int64_t>(std::find(tokens.begin(), tokens.end(), t) - tokens.begin());
  };
  for (size_t i = 0; i < tokens.size(); ++i)
    if (tokens[i].size() > 2 && tokens[i].front() == '[' && tokens[i].back() == ']') types[i] = 3;
  const int64_t unk = id_of("[UNK]");
  if (unk < static_cast<int64_t>(tokens.size())) types[unk] = 2;
  w.set("tokenizer.ggml.model", GgufValue::str("bert"));
  // [CLS] also as BOS: engines of llama.cpp's line begin a WordPiece input
  // with the BOS id (101 when the file names none), not with cls_token_id.
  for (const auto& [key, text] : {std::pair{"cls_token_id", "[CLS]"}, {"bos_token_id", "[CLS]"}, {"seperator_token_id", "[SEP]"},
                                  {"unknown_token_id", "[UNK]"}, {"padding_token_id", "[PAD]"}, {"mask_token_id", "[MASK]"}}) {
    const int64_t id = id_of(text);
    if (id < static_cast<int64_t>(types.size())) w.set(std::string("tokenizer.ggml.") + key, GgufValue::u32(static_cast<uint32_t>(id)));
  }
  w.set("tokenizer.ggml.tokens", GgufValue::string_array(std::move(tokens)));
  w.set("tokenizer.ggml.token_type", GgufValue::int_array(GgufType::kI32, types));
  w.set("tokenizer.ggml.token_type_count", GgufValue::u32(2));
}

// Word starts ("\u2581" + text) and continuations of every printable ASCII
// character, so any ASCII text tokenizes; then made-up words of both kinds.
void wordpiece_vocab(GgufWriter& w, const SynthPreset& p, std::mt19937_64& rng) {
  const std::string mark = "\xE2\x96\x81";
  std::vector<std::string> tokens(std::begin(kWordPieceSpecials), std::end(kWordPieceSpecials));
  for (char c = '!'; c <= '~'; ++c) {
    if (c >= 'A' && c <= 'Z') continue;  // the text is lowercased first
    tokens.push_back(mark + c);
    tokens.emplace_back(1, c);
  }
  std::unordered_set<std::string> seen(tokens.begin(), tokens.end());
  std::vector<std::string> pool;
  for (char c = 'a'; c <= 'z'; ++c) pool.emplace_back(1, c);
  const int64_t want = p.n_vocab - static_cast<int64_t>(tokens.size());
  // Half the new entries start words, half continue them.
  grow_words(pool, seen, want, rng, [&](const std::string&, const std::string&, const std::string& word) {
    tokens.push_back(tokens.size() % 2 == 0 ? mark + word : word);
  });
  tokens.resize(static_cast<size_t>(std::max<int64_t>(p.n_vocab, 0)));
  write_wordpiece(w, std::move(tokens));
}

}  // namespace

int64_t wordpiece_vocab_from_txt(GgufWriter& w, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Failure{path + ": cannot open the vocabulary"};
  std::vector<std::string> tokens;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > 2 && line.front() == '[' && line.back() == ']') tokens.push_back(line);
    else if (line.rfind("##", 0) == 0 && line.size() > 2) tokens.push_back(line.substr(2));
    else tokens.push_back("\xE2\x96\x81" + line);
  }
  if (tokens.empty()) throw Failure{path + ": the vocabulary is empty"};
  if (std::find(tokens.begin(), tokens.end(), "[CLS]") == tokens.end() ||
      std::find(tokens.begin(), tokens.end(), "[SEP]") == tokens.end())
    throw Failure{path + ": not a BERT vocab.txt (it has no [CLS] and [SEP] entries)"};
  const auto n = static_cast<int64_t>(tokens.size());
  write_wordpiece(w, std::move(tokens));
  return n;
}

void synth_vocab(GgufWriter& w, const SynthPreset& p, uint64_t seed) {
  std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
  if (p.vocab == SynthVocab::kSpm) spm_vocab(w, p, rng);
  else if (p.vocab == SynthVocab::kWordPiece) wordpiece_vocab(w, p, rng);
  else bpe_vocab(w, p, rng);
}

}  // namespace osprey::cli
