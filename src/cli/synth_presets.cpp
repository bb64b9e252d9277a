#include "cli/synth.h"

namespace osprey::cli {

// Shapes as published in each model's config.json.
const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> presets = {
      {"tinyllama-1.1b", "llama", "TinyLlama 1.1B (synthetic)", 32000, 2048, 22, 32, 4, 5632, 2048, 10000.0, 1e-5,
       false, false, false, SynthVocab::kSpm, "", {}},
      {"llama-3.2-1b", "llama", "Llama 3.2 1B (synthetic)", 128256, 2048, 16, 32, 8, 8192, 131072, 500000.0, 1e-5,
       true, false, true, SynthVocab::kBpe, "llama-bpe",
       {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}},
      {"qwen2.5-0.5b", "qwen2", "Qwen2.5 0.5B (synthetic)", 151936, 896, 24, 14, 2, 4864, 32768, 1000000.0, 1e-6,
       true, true, false, SynthVocab::kBpe, "qwen2", {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}},
      {"smollm2-135m", "llama", "SmolLM2 135M (synthetic)", 49152, 576, 30, 9, 3, 1536, 8192, 100000.0, 1e-5, true,
       false, false, SynthVocab::kBpe, "smollm", {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}},
      // Sentence-embedding encoders (bert): BGE small v1.5 (first-token pooling)
      // and all-MiniLM-L6-v2 (mean pooling), with BERT's 30522-entry WordPiece
      // vocabulary's size; --vocab vocab.txt gives them the real one.
      {"bge-small-en", "bert", "bge-small-en-v1.5 (synthetic)", 30522, 384, 12, 12, 12, 1536, 512, 10000.0, 1e-12,
       false, true, false, SynthVocab::kWordPiece, "", {}, {.pooling = 2}},
      {"all-minilm-l6", "bert", "all-MiniLM-L6-v2 (synthetic)", 30522, 384, 6, 12, 12, 1536, 512, 10000.0, 1e-12, false,
       true, false, SynthVocab::kWordPiece, "", {}, {.pooling = 1}},
      // A cross-encoder reranker (ms-marco-MiniLM-L-6-v2): MiniLM with a classification head on [CLS].
      {"ms-marco-minilm-l6", "bert", "ms-marco-MiniLM-L-6-v2 (synthetic)", 30522, 384, 6, 12, 12, 1536, 512, 10000.0,
       1e-12, false, true, false, SynthVocab::kWordPiece, "", {}, {.pooling = 4}},
      {"tiny-bert-rerank", "bert", "tiny bert reranker (synthetic)", 1000, 128, 2, 4, 4, 256, 128, 10000.0, 1e-12,
       false, true, false, SynthVocab::kWordPiece, "", {}, {.pooling = 4}},
      {"tiny-bert", "bert", "tiny bert (synthetic)", 1000, 128, 2, 4, 4, 256, 128, 10000.0, 1e-12, false, true, false,
       SynthVocab::kWordPiece, "", {}, {.pooling = 1}},
      // A few-MB model for tests: llama layout with a SentencePiece vocabulary.
      {"tiny", "llama", "tiny llama (synthetic)", 512, 256, 2, 4, 2, 512, 512, 10000.0, 1e-5, false, false, false,
       SynthVocab::kSpm, "", {}},
      // The same size with the qwen2 layout: QKV biases, NeoX rope, tied output, byte-level BPE.
      {"tiny-qwen2", "qwen2", "tiny qwen2 (synthetic)", 640, 256, 2, 4, 2, 512, 512, 1000000.0, 1e-6, true, true,
       false, SynthVocab::kBpe, "qwen2", {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}},
      // Tiny with Llama 3's rope frequency factors and tied embeddings.
      {"tiny-llama3", "llama", "tiny llama3 (synthetic)", 640, 256, 2, 4, 1, 512, 1024, 500000.0, 1e-5, true, false,
       true, SynthVocab::kBpe, "llama-bpe",
       {"<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"}},
      // Qwen3 0.6B: per-head Q/K norms, head size 128 beside a 1024-wide model.
      {"qwen3-0.6b", "qwen3", "Qwen3 0.6B (synthetic)", 151936, 1024, 28, 16, 8, 3072, 40960, 1000000.0, 1e-6, true,
       false, false, SynthVocab::kBpe, "qwen2", {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"},
       {.head_dim = 128, .qk_norm = true}},
      // Gemma 3 1B: 5 sliding-window layers (512) to each global one, head size 256, one KV head.
      {"gemma-3-1b", "gemma3", "Gemma 3 1B (synthetic)", 262144, 1152, 26, 4, 1, 6912, 32768, 1000000.0, 1e-6, true,
       false, false, SynthVocab::kSpm, "", {"<start_of_turn>", "<end_of_turn>"},
       {.head_dim = 256, .qk_norm = true, .post_norms = true, .window = 512}},
      // Gemma 2 2B: window and global layers alternating, soft-capped scores and logits.
      {"gemma-2-2b", "gemma2", "Gemma 2 2B (synthetic)", 256000, 2304, 26, 8, 4, 9216, 8192, 10000.0, 1e-6, true, false,
       false, SynthVocab::kSpm, "", {"<start_of_turn>", "<end_of_turn>"},
       {.head_dim = 256, .post_norms = true, .window = 4096, .attn_softcap = 50.0, .final_softcap = 30.0}},
      // Phi-3.5 mini: fused QKV and gate/up, head size 96, LongRoPE to 128k.
      {"phi-3.5-mini", "phi3", "Phi 3.5 mini (synthetic)", 32064, 3072, 32, 32, 32, 8192, 131072, 10000.0, 1e-5, false,
       false, false, SynthVocab::kSpm, "", {"<|endoftext|>", "<|assistant|>", "<|end|>", "<|system|>", "<|user|>"}, {.fused = true, .window = 262144, .n_ctx_orig = 4096}},
      // Qwen3-30B-A3B's layers (128 experts, 8 active, 768 wide), 8 of its 48, so that the file fits a disk.
      {"qwen3-moe", "qwen3moe", "Qwen3 30B-A3B, 8 of 48 layers (synthetic)", 151936, 2048, 8, 32, 4, 6144, 40960,
       1000000.0, 1e-6, false, false, false, SynthVocab::kBpe, "qwen2",
       {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"},
       {.head_dim = 128, .qk_norm = true, .n_expert = 128, .n_expert_used = 8, .n_ff_exp = 768}},
      // OLMoE 1B-7B: 64 experts, 8 active, Q/K normalised over whole rows.
      {"olmoe-1b-7b", "olmoe", "OLMoE 1B-7B (synthetic)", 50304, 2048, 16, 16, 16, 1024, 4096, 10000.0, 1e-5, false,
       false, false, SynthVocab::kBpe, "olmo", {"<|endoftext|>", "<|padding|>"},
       {.qk_norm = true, .n_expert = 64, .n_expert_used = 8, .qk_norm_full = true}},
      // Mixtral 8x7B's layers (8 experts, 2 active, 14336 wide), 2 of its 32.
      {"mixtral-tiny", "llama", "Mixtral 8x7B, 2 of 32 layers (synthetic)", 32000, 4096, 2, 32, 8, 14336, 32768,
       1000000.0, 1e-5, false, false, false, SynthVocab::kSpm, "", {}, {.n_expert = 8, .n_expert_used = 2}},
      // gpt-oss 20B: 32 experts (4 active) in MXFP4 with --type mxfp4, sinks, a 128-position window every other layer, YaRN x32.
      {"gpt-oss-20b", "gpt-oss", "gpt-oss 20B (synthetic)", 201088, 2880, 24, 64, 8, 2880, 131072, 150000.0, 1e-5, false,
       false, false, SynthVocab::kBpe, "gpt-4o", {"<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>"},
       {.head_dim = 64, .window = 128, .n_ctx_orig = 4096, .n_expert = 32, .n_expert_used = 4, .n_ff_exp = 2880,
        .yarn_factor = 32, .gpt_oss = true}},
      // Few-MB versions of each family for the tests. Windows of 8 and 16
      // positions, so that short prompts already slide past them.
      {"tiny-qwen3", "qwen3", "tiny qwen3 (synthetic)", 640, 256, 2, 4, 2, 512, 512, 1000000.0, 1e-6, true, false,
       false, SynthVocab::kBpe, "qwen2", {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"},
       {.head_dim = 96, .qk_norm = true}},
      {"tiny-gemma3", "gemma3", "tiny gemma3 (synthetic)", 512, 256, 6, 4, 1, 512, 512, 1000000.0, 1e-6, true, false,
       false, SynthVocab::kSpm, "", {"<start_of_turn>", "<end_of_turn>"}, {.head_dim = 64, .qk_norm = true, .post_norms = true, .window = 8}},
      // 26 layers, as Gemma 2 2B: other engines recognise Gemma 2 sizes by their layer counts.
      {"tiny-gemma2", "gemma2", "tiny gemma2 (synthetic)", 512, 256, 26, 4, 2, 512, 512, 10000.0, 1e-6, true, false,
       false, SynthVocab::kSpm, "", {"<start_of_turn>", "<end_of_turn>"},
       {.head_dim = 64, .post_norms = true, .window = 8, .attn_softcap = 50.0, .final_softcap = 30.0}},
      {"tiny-phi3", "phi3", "tiny phi3 (synthetic)", 512, 256, 2, 4, 4, 512, 512, 10000.0, 1e-5, false, false, false,
       SynthVocab::kSpm, "", {"<|endoftext|>", "<|assistant|>", "<|end|>", "<|system|>", "<|user|>"}, {.fused = true, .window = 16, .n_ctx_orig = 32}},
      {"tiny-qwen3moe", "qwen3moe", "tiny qwen3moe (synthetic)", 640, 256, 2, 4, 2, 512, 512, 1000000.0, 1e-6, false,
       false, false, SynthVocab::kBpe, "qwen2", {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"},
       {.head_dim = 64, .qk_norm = true, .n_expert = 8, .n_expert_used = 3, .n_ff_exp = 128}},
      {"tiny-olmoe", "olmoe", "tiny olmoe (synthetic)", 512, 256, 2, 4, 4, 128, 512, 10000.0, 1e-5, false, false, false,
       SynthVocab::kBpe, "olmo", {"<|endoftext|>", "<|padding|>"},
       {.qk_norm = true, .n_expert = 8, .n_expert_used = 2, .qk_norm_full = true}},
      {"tiny-gpt-oss", "gpt-oss", "tiny gpt-oss (synthetic)", 640, 256, 2, 4, 2, 256, 512, 150000.0, 1e-5, false, false,
       false, SynthVocab::kBpe, "gpt-4o", {"<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>"},
       {.head_dim = 64, .window = 8, .n_ctx_orig = 64, .n_expert = 8, .n_expert_used = 2, .n_ff_exp = 256,
        .yarn_factor = 4, .gpt_oss = true}},
      {"tiny-mixtral", "llama", "tiny mixtral (synthetic)", 512, 256, 2, 4, 2, 256, 512, 1000000.0, 1e-5, false, false,
       false, SynthVocab::kSpm, "", {}, {.n_expert = 4, .n_expert_used = 2}},
  };
  return presets;
}

const SynthPreset* find_synth_preset(const std::string& name) {
  for (const auto& p : synth_presets())
    if (name == p.name) return &p;
  return nullptr;
}

}  // namespace osprey::cli
