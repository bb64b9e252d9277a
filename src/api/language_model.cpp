// The public API (include/osprey/osprey.h) over the engine: a Model with its
// tokenizer and chat template, and sessions that each own one of the
// model's sequences and drive the engine's generation loop on it.
#include <algorithm>

#include "convert/hf_to_gguf.h"
#include "core/thread_pool.h"
#include "engine/generator.h"
#include "models/device_pass.h"
#include "models/model.h"
#include "osprey/osprey.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace osprey {

struct LanguageModel::Impl {
  std::unique_ptr<Model> model;
  std::shared_ptr<Tokenizer> tokenizer;
  ChatTemplate chat_template;
  std::vector<bool> seq_open;
};

struct Session::Impl {
  LanguageModel::Impl* model = nullptr;
  int seq = 0;
  std::vector<int32_t> held;  // the tokens the sequence holds
};

namespace {

// The conversation through the model's chat template.
Expected<std::string> render(const LanguageModel::Impl& m, const std::vector<ChatMessage>& messages,
                             bool add_generation_prompt) {
  ChatContext ctx;
  for (const ChatMessage& msg : messages) ctx.messages.push_back({{"role", msg.role}, {"content", msg.content}});
  ctx.add_generation_prompt = add_generation_prompt;
  const Vocab& v = m.tokenizer->vocab();
  ctx.bos_token = v.text_of(v.bos);
  ctx.eos_token = v.text_of(v.eos);
  return m.chat_template.render(ctx);
}

Finish finish_of(FinishReason r) {
  switch (r) {
    case FinishReason::kStop: return Finish::kStop;
    case FinishReason::kLength: return Finish::kLength;
    case FinishReason::kContextFull: return Finish::kContextFull;
    case FinishReason::kCancelled: return Finish::kCancelled;
    case FinishReason::kError: break;  // generate() returns an error instead
  }
  return Finish::kLength;
}

// Generates after `fresh`, which the session appends to what it holds.
Expected<Generation> run(Session::Impl& s, const std::vector<int32_t>& fresh, const GenerationOptions& o,
                         const TextCallback& on_text) {
  if (fresh.empty()) return InvalidArgument("nothing to generate from: the prompt is empty after tokenization");
  Model& model = *s.model->model;
  ReplyOptions go;
  go.max_tokens = o.max_tokens;
  go.sampling.temperature = o.sampling.temperature;
  go.sampling.top_k = o.sampling.top_k;
  go.sampling.top_p = o.sampling.top_p;
  go.sampling.min_p = o.sampling.min_p;
  go.sampling.repeat_penalty = o.sampling.repeat_penalty;
  go.sampling.seed = o.sampling.seed;
  Generation g;
  ModelRunner runner(model, s.seq);
  auto result = generate(runner, *s.model->tokenizer, fresh, go, [&](int32_t, const std::string& text) {
    g.text += text;
    return !on_text || text.empty() || on_text(text);
  });
  if (!result.ok()) {
    model.seq_clear(s.seq);
    s.held.clear();
    return result.status();
  }
  s.held.insert(s.held.end(), fresh.begin(), fresh.end());
  // The sequence holds every generated token but the last one sampled.
  if (!result->tokens.empty()) s.held.insert(s.held.end(), result->tokens.begin(), result->tokens.end() - 1);
  model.seq_truncate(s.seq, static_cast<int64_t>(s.held.size()));
  s.held.resize(static_cast<size_t>(model.seq_n_past(s.seq)));
  g.tokens = std::move(result->tokens);
  g.finish = finish_of(result->finish);
  g.prompt_tokens = result->n_prompt;
  g.prompt_seconds = result->prompt_seconds;
  g.generation_seconds = result->gen_seconds;
  return g;
}

}  // namespace

const char* finish_name(Finish f) {
  switch (f) {
    case Finish::kStop: return "stop";
    case Finish::kLength: return "length";
    case Finish::kContextFull: return "context_full";
    case Finish::kCancelled: return "cancelled";
  }
  return "length";
}

LanguageModel::LanguageModel(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
LanguageModel::~LanguageModel() = default;

Expected<std::unique_ptr<LanguageModel>> LanguageModel::load(const std::string& path, const LoadOptions& options) {
  if (options.sessions < 1 || options.sessions > 256)
    return InvalidArgument("sessions " + std::to_string(options.sessions) + " is out of range (1..256)");
  auto impl = std::make_unique<Impl>();
  ModelOptions mo;
  mo.n_threads = options.threads;
  mo.n_ctx = options.context;
  mo.n_seq_max = options.sessions;
  mo.device = options.device;
  mo.f16_as_bf16 = options.f16_as_bf16;
  OSPREY_ASSIGN_OR_RETURN(mo.cache_type_k, parse_kv_cache_type(options.cache_type_k, "cache_type_k"));
  OSPREY_ASSIGN_OR_RETURN(mo.cache_type_v, parse_kv_cache_type(options.cache_type_v, "cache_type_v"));
  ConvertOptions co;  // a Hugging Face folder is converted on the way in
  co.n_threads = options.threads > 0 ? options.threads : default_thread_count();
  OSPREY_ASSIGN_OR_RETURN(GgufFile file, open_model_file(path, co, [](const ConvertProgress&) {}));
  OSPREY_ASSIGN_OR_RETURN(impl->model, Model::from_file(std::move(file), mo));
  OSPREY_ASSIGN_OR_RETURN(impl->tokenizer, Tokenizer::from_gguf(impl->model->file()));
  OSPREY_ASSIGN_OR_RETURN(impl->chat_template, ChatTemplate::from_gguf(impl->model->file()));
  impl->seq_open.assign(options.sessions, false);
  return std::unique_ptr<LanguageModel>(new LanguageModel(std::move(impl)));
}

std::string LanguageModel::architecture() const { return impl_->model->config().arch; }
std::string LanguageModel::device() const { return impl_->model->device_name(); }
std::string LanguageModel::name() const { return impl_->model->config().name; }
int64_t LanguageModel::context_size() const { return impl_->model->n_ctx(); }
int64_t LanguageModel::vocabulary_size() const { return impl_->model->config().n_vocab; }

bool LanguageModel::time_kernels(bool on) {
  DevicePass* dp = impl_->model->device_pass();
  if (dp == nullptr) return !on;
  if (on) dp->clear_operation_times();
  return dp->time_operations(on);
}

std::vector<LanguageModel::KernelTime> LanguageModel::kernel_times() const {
  std::vector<KernelTime> out;
  if (const DevicePass* dp = impl_->model->device_pass())
    for (const DevicePass::OpTime& op : dp->operation_times()) out.push_back({op.kernel, op.calls, op.seconds});
  return out;
}

std::vector<int32_t> LanguageModel::tokenize(std::string_view text, bool add_bos) const {
  return impl_->tokenizer->encode(text, add_bos, /*parse_special=*/true);
}

std::string LanguageModel::detokenize(const std::vector<int32_t>& tokens) const {
  return impl_->tokenizer->decode(tokens);
}

Expected<std::string> LanguageModel::render_chat(const std::vector<ChatMessage>& messages,
                                                 bool add_generation_prompt) const {
  return render(*impl_, messages, add_generation_prompt);
}

Expected<std::unique_ptr<Session>> LanguageModel::new_session() {
  auto free = std::find(impl_->seq_open.begin(), impl_->seq_open.end(), false);
  if (free == impl_->seq_open.end())
    return OutOfRange("all " + std::to_string(impl_->seq_open.size()) +
                      " sessions are open (LoadOptions::sessions sets how many)");
  *free = true;
  auto s = std::make_unique<Session::Impl>();
  s->model = impl_.get();
  s->seq = static_cast<int>(free - impl_->seq_open.begin());
  impl_->model->seq_clear(s->seq);
  return std::unique_ptr<Session>(new Session(std::move(s)));
}

Session::Session(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Session::~Session() {
  impl_->model->model->seq_clear(impl_->seq);
  impl_->model->seq_open[impl_->seq] = false;
}

Expected<Generation> Session::generate(std::string_view prompt, const GenerationOptions& options,
                                       const TextCallback& on_text) {
  // A BOS only when the session starts empty.
  const auto ids = impl_->model->tokenizer->encode(prompt, impl_->held.empty(), /*parse_special=*/true);
  return run(*impl_, ids, options, on_text);
}

Expected<Generation> Session::chat(const std::vector<ChatMessage>& messages, const GenerationOptions& options,
                                   const TextCallback& on_text) {
  OSPREY_ASSIGN_OR_RETURN(std::string text, render(*impl_->model, messages, /*add_generation_prompt=*/true));
  const std::vector<int32_t> ids = impl_->model->tokenizer->encode_chat(text);
  // Keep what the session already holds of this prompt; at least the last token is evaluated.
  size_t common = 0;
  while (common < impl_->held.size() && common < ids.size() && impl_->held[common] == ids[common]) ++common;
  if (common == ids.size() && common > 0) --common;
  Model& model = *impl_->model->model;
  model.seq_truncate(impl_->seq, static_cast<int64_t>(common));
  common = static_cast<size_t>(model.seq_n_past(impl_->seq));  // a window model may start over
  impl_->held.resize(common);
  return run(*impl_, std::vector<int32_t>(ids.begin() + static_cast<std::ptrdiff_t>(common), ids.end()), options,
             on_text);
}

Expected<std::vector<float>> Session::logits(const std::vector<int32_t>& tokens) {
  if (tokens.empty()) return InvalidArgument("no tokens to evaluate");
  Model& model = *impl_->model->model;
  BatchItem item;
  item.seq = impl_->seq;
  item.tokens = tokens.data();
  item.n = static_cast<int64_t>(tokens.size());
  OSPREY_ASSIGN_OR_RETURN(const float* row, model.eval_batch(&item, 1));
  impl_->held.insert(impl_->held.end(), tokens.begin(), tokens.end());
  return std::vector<float>(row, row + model.config().n_vocab);
}

void Session::reset() {
  impl_->model->model->seq_clear(impl_->seq);
  impl_->held.clear();
}

int64_t Session::tokens_held() const { return static_cast<int64_t>(impl_->held.size()); }

}  // namespace osprey
