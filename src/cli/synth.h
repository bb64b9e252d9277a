// `osprey synth`: models with random weights in the exact shapes of real ones.
// They cost what the real models cost to run, so they serve tests,
// benchmarks and anyone without a model file at hand.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cli/synth_format.h"
#include "formats/gguf.h"

namespace osprey::cli {

enum class SynthVocab { kSpm, kBpe, kWordPiece };

// What a family adds to the Llama layout; all off for llama/mistral/qwen2.
struct SynthFamilyShape {
  int64_t head_dim = 0;         // 0: n_embd / n_head
  bool qk_norm = false;         // per-head Q/K RMS norms (qwen3, gemma3)
  bool post_norms = false;      // norms after attention and FFN (gemma)
  bool fused = false;           // attn_qkv and a gate+up ffn_up (phi3)
  int64_t window = 0;           // attention.sliding_window
  double attn_softcap = 0, final_softcap = 0;
  int64_t n_ctx_orig = 0;       // LongRoPE (or YaRN): original context; LongRoPE writes its long and short factor tables
  int64_t n_expert = 0, n_expert_used = 0;  // a mixture of experts in every layer
  int64_t n_ff_exp = 0;         // each expert's width when it differs from n_ff (written as expert_feed_forward_length)
  bool qk_norm_full = false;    // Q/K norms over whole rows (olmoe) rather than per head
  double yarn_factor = 0;       // YaRN scaling (with n_ctx_orig as the original context), instead of LongRoPE
  bool gpt_oss = false;         // biases on Q/K/V/output, router and experts; attention sinks; post_attention_norm as the FFN norm
  int pooling = 0;              // encoders (bert): pooling_type, 1 mean, 2 first token, 4 rank (with a classification head)
};

struct SynthPreset {
  const char* name;
  const char* arch;
  const char* model_name;  // general.name
  int64_t n_vocab, n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
  double rope_base, norm_eps;
  bool tied_output, qkv_bias, llama3_rope;
  SynthVocab vocab;
  const char* pre;  // tokenizer.ggml.pre for BPE vocabularies
  std::vector<const char*> specials;  // control tokens appended to the vocabulary
  SynthFamilyShape shape = {};
};

const std::vector<SynthPreset>& synth_presets();
const SynthPreset* find_synth_preset(const std::string& name);

struct SynthOptions {
  std::string preset, type = "q8_0", out, vocab;
  uint64_t seed = 42;
  bool list = false;
  bool quiet = false;  // no progress on stderr
  // Plain random weights, without the successor chain: every block moves the
  // logits, so comparing logits with another engine tests attention, rope,
  // norms and windows, not just the last layer's memory.
  bool plain = false;
  // "gguf", or "hf": a Hugging Face folder at `out` (config.json, safetensors
  // in hf_dtype, tokenizer.json), made from the GGUF file synth would write.
  std::string format = "gguf";
  std::string hf_dtype = "bf16";
  uint64_t shard_bytes = 0;  // hf: shards of about this size (0: one file)
  int64_t n_ff = 0, n_embd = 0, n_layer = 0;  // the preset's shape, changed; 0: as it is
  // --lora BASE: write a LoRA adapter for the model file BASE instead of a model.
  std::string lora_base;
  int64_t lora_rank = 8;
  double lora_alpha = 16;
  std::string lora_targets = "attn_q,attn_k,attn_v,attn_qkv,attn_output,ffn_gate,ffn_up,ffn_down,output";
};

// Writes the model `o` describes; throws cli::Failure with a message on error.
void write_synth_model(const SynthOptions& o);

// Writes tokenizer.* metadata for a WordPiece vocabulary read from a BERT
// vocab.txt (one entry per line, continuations as "##piece"), converted to
// the U+2581 form GGUF files use. Returns the entry count.
int64_t wordpiece_vocab_from_txt(GgufWriter& w, const std::string& path);

// Writes tokenizer.* metadata for a made-up vocabulary of preset.n_vocab
// tokens that round-trips any text (byte fallback / byte-level).
void synth_vocab(GgufWriter& w, const SynthPreset& preset, uint64_t seed);

}  // namespace osprey::cli
