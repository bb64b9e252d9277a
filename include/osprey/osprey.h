// osprey's public C++ API: load a model file, open sessions (one sequence of
// tokens each), and generate text with a streaming callback. This header
// and osprey/status.h are all a program needs; link the osprey_api library.
//
//   auto model = osprey::LanguageModel::load("model.gguf");
//   if (!model.ok()) { fprintf(stderr, "%s\n", model.status().message().c_str()); return 1; }
//   auto session = (*model)->new_session();
//   auto reply = (*session)->chat({{"user", "Hello!"}}, {}, [](std::string_view piece) {
//     fwrite(piece.data(), 1, piece.size(), stdout);
//     return true;  // false stops the generation
//   });
//
// A LanguageModel and its sessions are used from one thread at a time:
// sessions take turns on the model. (osprey serve batches many sequences in
// one pass; this API runs one session's tokens at a time.)
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "osprey/status.h"

namespace osprey {

struct LoadOptions {
  int threads = 0;         // 0: every core
  int64_t context = 0;     // tokens per session; 0: the model's training context, at most 4096
  int sessions = 1;        // sessions open at once
  // How the KV cache stores keys and values: "f16", "bf16", "f32", "q8_0",
  // "q5_1", "q5_0", "q4_1" or "q4_0" (q8_0 halves the cache's memory).
  std::string cache_type_k = "f16", cache_type_v = "f16";
  // Where the forward pass runs: "cpu", "vulkan", or "webgpu" (the
  // WebAssembly build in a browser, once JavaScript has opened the device).
  std::string device = "cpu";
  // Round F16 weight matrices to BF16 at load and run the BF16 kernels:
  // faster prompts on CPUs with AVX512_BF16, three mantissa bits fewer per
  // weight. Off: F16 stays exact.
  bool f16_as_bf16 = false;
};

struct SamplingOptions {
  float temperature = 0.8f;  // 0: greedy, always the most likely token
  int32_t top_k = 40;        // 0: off
  float top_p = 0.95f;       // 1: off
  float min_p = 0.05f;       // 0: off
  float repeat_penalty = 1.0f;
  uint64_t seed = 0;
};

struct GenerationOptions {
  int64_t max_tokens = 256;  // -1: until the model ends its turn or the context is full
  SamplingOptions sampling;
};

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

enum class Finish { kStop, kLength, kContextFull, kCancelled };
const char* finish_name(Finish f);  // "stop", "length", "context_full", "cancelled"

struct Generation {
  std::string text;
  std::vector<int32_t> tokens;  // generated ids
  Finish finish = Finish::kLength;
  int64_t prompt_tokens = 0;
  double prompt_seconds = 0, generation_seconds = 0;
};

// Called with each piece of generated text; returning false stops.
using TextCallback = std::function<bool(std::string_view piece)>;

class Session;

class LanguageModel {
 public:
  // Fails with a message naming the problem: a missing or corrupt file, an
  // architecture osprey does not run, a bad option.
  static Expected<std::unique_ptr<LanguageModel>> load(const std::string& path, const LoadOptions& options = {});
  ~LanguageModel();
  LanguageModel(const LanguageModel&) = delete;
  LanguageModel& operator=(const LanguageModel&) = delete;

  std::string architecture() const;  // general.architecture: "llama", "gemma3", "gpt-oss", ...
  std::string name() const;          // general.name, or ""
  std::string device() const;        // where the forward pass runs: "cpu", "vulkan (ADAPTER)", ...
  int64_t context_size() const;      // tokens per session
  int64_t vocabulary_size() const;

  std::vector<int32_t> tokenize(std::string_view text, bool add_bos = true) const;
  std::string detokenize(const std::vector<int32_t>& tokens) const;
  // The conversation as the model's own chat template writes it.
  Expected<std::string> render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;

  // A new, empty session; fails when LoadOptions::sessions are already open.
  Expected<std::unique_ptr<Session>> new_session();

  // Where a GPU's time goes (bench): while on, the device times each kernel
  // it runs. time_kernels(true) starts afresh, and is false, timing nothing,
  // on the CPU or on a device without timestamp queries. Timestamps cost a
  // little, so measure tokens/s with timing off.
  struct KernelTime {
    std::string kernel;  // "mat_q8_0", "attention", ...
    int64_t calls = 0;
    double seconds = 0;  // on the device, summed over the calls
  };
  bool time_kernels(bool on);
  std::vector<KernelTime> kernel_times() const;  // since time_kernels(true), in order of first call

  struct Impl;

 private:
  explicit LanguageModel(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Session {
 public:
  ~Session();  // frees its place in the model
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Appends `prompt` (tokenized as is, special tokens included) to what the
  // session holds and generates after it.
  Expected<Generation> generate(std::string_view prompt, const GenerationOptions& options = {},
                                const TextCallback& on_text = {});
  // Renders the conversation with the chat template and generates the
  // assistant's reply. The session reuses what it already holds of the
  // rendered prompt.
  Expected<Generation> chat(const std::vector<ChatMessage>& messages, const GenerationOptions& options = {},
                            const TextCallback& on_text = {});
  // Appends `tokens` to what the session holds and returns the logits of
  // the next token (vocabulary_size() scores), for scoring text or a
  // sampler of one's own. Fails, holding what it held, on an id out of
  // range or a full context.
  Expected<std::vector<float>> logits(const std::vector<int32_t>& tokens);
  void reset();                // forgets every token
  int64_t tokens_held() const;

  struct Impl;

 private:
  friend class LanguageModel;
  explicit Session(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace osprey
