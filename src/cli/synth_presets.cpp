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
  };
  return presets;
}

const SynthPreset* find_synth_preset(const std::string& name) {
  for (const auto& p : synth_presets())
    if (name == p.name) return &p;
  return nullptr;
}

}  // namespace osprey::cli
