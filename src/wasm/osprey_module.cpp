// The WebAssembly module's bindings: osprey's public API (osprey/osprey.h)
// as one JavaScript class, Engine, for src/wasm/osprey_api.js to wrap.
// Options, messages and results cross as JSON text, errors as {error: "..."}
// objects, so the JavaScript side never sees a C++ exception.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/mapped_file.h"
#include "osprey/osprey.h"

namespace osprey {
namespace {

using emscripten::val;
using nlohmann::json;

val error(const std::string& message) {
  val out = val::object();
  out.set("error", message);
  return out;
}

// A JSON field of the expected type, or the default; a field of another
// type is an error that names it.
template <class T>
T field(const json& j, const char* name, T fallback) {
  auto it = j.find(name);
  if (it == j.end() || it->is_null()) return fallback;
  if constexpr (std::is_same_v<T, bool>) {
    if (!it->is_boolean()) throw std::invalid_argument(std::string(name) + " must be a boolean");
  } else if constexpr (std::is_integral_v<T>) {
    // Checked before converting: an out-of-range double traps in WebAssembly.
    using L = std::numeric_limits<T>;
    bool ok = false;
    if (it->is_number_unsigned()) ok = it->get<uint64_t>() <= static_cast<uint64_t>(L::max());
    else if (it->is_number_integer()) ok = it->get<int64_t>() >= static_cast<int64_t>(L::min()) &&
                                           (L::digits >= 63 || it->get<int64_t>() <= static_cast<int64_t>(L::max()));
    else if (it->is_number_float()) {
      const double v = it->get<double>();
      ok = v == std::trunc(v) && v >= static_cast<double>(L::min()) && v < std::ldexp(1.0, L::digits);
      if (ok) return static_cast<T>(v);
    }
    if (!ok) throw std::invalid_argument(std::string(name) + " must be a number: an integer in range");
  } else if constexpr (std::is_arithmetic_v<T>) {
    if (!it->is_number()) throw std::invalid_argument(std::string(name) + " must be a number");
  } else if constexpr (std::is_same_v<T, std::string>) {
    if (!it->is_string()) throw std::invalid_argument(std::string(name) + " must be a string");
  }
  return it->get<T>();
}

GenerationOptions generation_options(const std::string& text) {
  const json j = text.empty() ? json::object() : json::parse(text);
  if (!j.is_object()) throw std::invalid_argument("options must be an object");
  GenerationOptions o;
  o.max_tokens = field<int64_t>(j, "maxTokens", o.max_tokens);
  SamplingOptions& s = o.sampling;
  s.temperature = field<float>(j, "temperature", s.temperature);
  s.top_k = field<int32_t>(j, "topK", s.top_k);
  s.top_p = field<float>(j, "topP", s.top_p);
  s.min_p = field<float>(j, "minP", s.min_p);
  s.repeat_penalty = field<float>(j, "repeatPenalty", s.repeat_penalty);
  s.seed = field<uint64_t>(j, "seed", s.seed);
  return o;
}

std::vector<ChatMessage> chat_messages(const std::string& text) {
  const json j = json::parse(text);
  if (!j.is_array()) throw std::invalid_argument("messages must be an array of {role, content}");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const json& m = j[i];
    const std::string at = "messages[" + std::to_string(i) + "]";
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string() || !m.contains("content") ||
        !m["content"].is_string())
      throw std::invalid_argument(at + " must be {role: string, content: string}");
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

val generation_result(const Expected<Generation>& g) {
  if (!g.ok()) return error(g.status().message());
  val out = val::object();
  out.set("text", g->text);
  val tokens = val::array();
  for (size_t i = 0; i < g->tokens.size(); ++i) tokens.set(i, g->tokens[i]);
  out.set("tokens", tokens);
  out.set("finish", std::string(finish_name(g->finish)));
  out.set("promptTokens", static_cast<double>(g->prompt_tokens));
  out.set("promptSeconds", g->prompt_seconds);
  out.set("generationSeconds", g->generation_seconds);
  return out;
}

// One model and its one session: a page or a Node program runs one
// conversation at a time per model.
class Engine {
 public:
  // Loads the file at `path` (Node's file system) or the bytes adopted under
  // that name (see adopt_bytes). Returns "" or the error.
  std::string load(const std::string& path, const std::string& options_json) {
    try {
      const json j = options_json.empty() ? json::object() : json::parse(options_json);
      LoadOptions o;
      o.threads = field<int>(j, "threads", 0);
      o.context = field<int64_t>(j, "context", 0);
      o.cache_type_k = field<std::string>(j, "cacheTypeK", o.cache_type_k);
      o.cache_type_v = field<std::string>(j, "cacheTypeV", o.cache_type_v);
      o.device = field<std::string>(j, "device", o.device);
      if (o.threads < 0 || o.threads > kMaxThreads)
        return "threads " + std::to_string(o.threads) + " is out of range (0..." + std::to_string(kMaxThreads) + ")" +
               (kMaxThreads == 1 && o.threads > 1
                    ? ": this is the single-threaded module (osprey-single.js); osprey.js runs on threads, in "
                      "Node or on a cross-origin isolated page"
                    : "");
      session_.reset();
      model_.reset();
      auto model = LanguageModel::load(path, o);
      if (!model.ok()) return model.status().message();
      auto session = (*model)->new_session();
      if (!session.ok()) return session.status().message();
      model_ = std::move(*model);
      session_ = std::move(*session);
      return "";
    } catch (const std::exception& e) {
      return std::string("options: ") + e.what();
    }
  }

  val info() const {
    if (!model_) return error("no model is loaded");
    val out = val::object();
    out.set("architecture", model_->architecture());
    out.set("name", model_->name());
    out.set("device", model_->device());
    out.set("context", static_cast<double>(model_->context_size()));
    out.set("vocabulary", static_cast<double>(model_->vocabulary_size()));
    out.set("tokensHeld", static_cast<double>(session_->tokens_held()));
    return out;
  }

  val tokenize(const std::string& text, bool add_bos) const {
    if (!model_) return error("no model is loaded");
    const std::vector<int32_t> ids = model_->tokenize(text, add_bos);
    val out = val::array();
    for (size_t i = 0; i < ids.size(); ++i) out.set(i, ids[i]);
    return out;
  }

  val detokenize(const val& ids) const {
    if (!model_) return error("no model is loaded");
    std::vector<int32_t> tokens;
    if (std::string bad = token_ids(ids, tokens); !bad.empty()) return error(bad);
    val out = val::object();
    out.set("text", model_->detokenize(tokens));
    return out;
  }

  val render_chat(const std::string& messages_json, bool add_generation_prompt) const {
    if (!model_) return error("no model is loaded");
    try {
      auto text = model_->render_chat(chat_messages(messages_json), add_generation_prompt);
      if (!text.ok()) return error(text.status().message());
      val out = val::object();
      out.set("text", *text);
      return out;
    } catch (const std::exception& e) {
      return error(e.what());
    }
  }

  val generate(const std::string& prompt, const std::string& options_json, val on_text) {
    if (!model_) return error("no model is loaded");
    try {
      return generation_result(session_->generate(prompt, generation_options(options_json), stream(on_text)));
    } catch (const std::exception& e) {
      return error(e.what());
    }
  }

  val chat(const std::string& messages_json, const std::string& options_json, val on_text) {
    if (!model_) return error("no model is loaded");
    try {
      return generation_result(
          session_->chat(chat_messages(messages_json), generation_options(options_json), stream(on_text)));
    } catch (const std::exception& e) {
      return error(e.what());
    }
  }

  // The next token's logits after appending `ids`, as a Float32Array.
  val logits(const val& ids) {
    if (!model_) return error("no model is loaded");
    std::vector<int32_t> tokens;
    if (std::string bad = token_ids(ids, tokens); !bad.empty()) return error(bad);
    auto row = session_->logits(tokens);
    if (!row.ok()) return error(row.status().message());
    return val::global("Float32Array").new_(emscripten::typed_memory_view(row->size(), row->data()));
  }

  // Device time per kernel (bench on WebGPU): false when the device cannot time.
  bool time_kernels(bool on) { return model_ ? model_->time_kernels(on) : !on; }

  val kernel_times() const {
    if (!model_) return error("no model is loaded");
    val out = val::array();
    const std::vector<LanguageModel::KernelTime> times = model_->kernel_times();
    for (size_t i = 0; i < times.size(); ++i) {
      val k = val::object();
      k.set("kernel", times[i].kernel);
      k.set("calls", static_cast<double>(times[i].calls));
      k.set("seconds", times[i].seconds);
      out.set(i, k);
    }
    return out;
  }

  void reset() {
    if (session_) session_->reset();
  }

  void unload() {
    session_.reset();
    model_.reset();
  }

 private:
  // The module's pool of Web Workers (cmake/wasm.cmake); a pass's threads come from it.
  static constexpr int kMaxThreads = OSPREY_WASM_THREADS;

  // The ids of a JavaScript array, each checked against the vocabulary;
  // returns "" or what is wrong.
  std::string token_ids(const val& ids, std::vector<int32_t>& out) const {
    // Indexes are 32-bit: emscripten's val has no 64-bit integer type.
    const uint32_t n = ids["length"].as<uint32_t>();
    for (uint32_t i = 0; i < n; ++i) {
      const double id = ids[i].as<double>();
      if (!(id >= 0 && id < static_cast<double>(model_->vocabulary_size())) || id != static_cast<int32_t>(id))
        return "token " + std::to_string(i) + " is not an id of this vocabulary";
      out.push_back(static_cast<int32_t>(id));
    }
    return "";
  }

  static TextCallback stream(val on_text) {
    if (on_text.isUndefined() || on_text.isNull()) return {};
    return [on_text](std::string_view piece) {
      const val keep = on_text(std::string(piece));
      return !(keep.isFalse());
    };
  }

  std::unique_ptr<LanguageModel> model_;
  std::unique_ptr<Session> session_;
};

// Takes ownership of `size` bytes at `address` (from the module's malloc),
// to be loaded as `name`; see MappedFile::adopt.
void adopt_bytes(const std::string& name, uintptr_t address, double size) {
  MappedFile::adopt(name, reinterpret_cast<uint8_t*>(address), static_cast<size_t>(size));
}

void forget_bytes(const std::string& name) { MappedFile::forget(name); }

int hardware_threads() { return static_cast<int>(std::thread::hardware_concurrency()); }

// The most threads a model may ask for: the threaded module's pool, or 1.
int max_threads() { return OSPREY_WASM_THREADS; }

}  // namespace
}  // namespace osprey

EMSCRIPTEN_BINDINGS(osprey) {
  using namespace osprey;
  emscripten::class_<Engine>("Engine")
      .constructor<>()
      .function("load", &Engine::load)
      .function("info", &Engine::info)
      .function("tokenize", &Engine::tokenize)
      .function("detokenize", &Engine::detokenize)
      .function("renderChat", &Engine::render_chat)
      .function("generate", &Engine::generate)
      .function("chat", &Engine::chat)
      .function("logits", &Engine::logits)
      .function("timeKernels", &Engine::time_kernels)
      .function("kernelTimes", &Engine::kernel_times)
      .function("reset", &Engine::reset)
      .function("unload", &Engine::unload);
  emscripten::function("adoptBytes", &adopt_bytes);
  emscripten::function("forgetBytes", &forget_bytes);
  emscripten::function("hardwareThreads", &hardware_threads);
  emscripten::function("maxThreads", &max_threads);
}
