// `osprey chat`: a terminal conversation through the model's own chat
// template. Each turn renders the whole history, keeps the KV cache for the
// part of the prompt that did not change, and evaluates only the rest.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>

#include "cli/commands.h"
#include "cli/load_model.h"
#include "cli/lora_flags.h"
#include "cli/kv_cache_flags.h"
#include "cli/speculation_flags.h"
#include "core/log.h"
#include "engine/generator.h"
#include "template/chat_template.h"

namespace osprey::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void on_sigint(int) { g_interrupted = true; }

struct ChatOptions {
  std::string device = "cpu";
  std::string model, system;
  int threads = 0;
  int64_t ctx = 0;
  int64_t max_tokens = 512;
  float temperature = 0.7f;
  int64_t seed = -1;
  KvCacheFlags kv_cache;
  bool f16_as_bf16 = false;
  FolderFlags folder;
  std::vector<std::string> lora;
  SpeculationFlags spec;
};

const char* kHelp =
    "commands: /reset (forget the conversation), /system TEXT (set the system prompt and reset),\n"
    "          /save FILE, /load FILE (the conversation as JSON messages), /quit; Ctrl-C stops a reply\n";

// One conversation with a loaded model: the messages so far, and which
// tokens of the last rendered prompt the KV cache still holds.
class ChatSession {
 public:
  ChatSession(const ChatOptions& o, std::unique_ptr<Model> model, std::unique_ptr<Model> draft,
              std::shared_ptr<Tokenizer> tok, ChatTemplate tmpl)
      : o_(o), model_(std::move(model)), draft_(std::move(draft)), tok_(std::move(tok)), tmpl_(std::move(tmpl)), system_(o.system),
        seed_(o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}()) {
    reset();
  }

  const std::string& template_name() const { return tmpl_.name(); }

  // A line starting with '/': runs it; false for /quit.
  bool command(const std::string& line) {
    if (line == "/quit" || line == "/exit") return false;
    if (line == "/help") {
      std::printf("%s", kHelp);
    } else if (line == "/reset") {
      reset();
      std::printf("(conversation cleared)\n");
    } else if (line.rfind("/system ", 0) == 0) {
      system_ = line.substr(8);
      reset();
      std::printf("(system prompt set; conversation cleared)\n");
    } else if (line.rfind("/save ", 0) == 0) {
      save(line.substr(6));
    } else if (line.rfind("/load ", 0) == 0) {
      load(line.substr(6));
    } else {
      std::printf("(unknown command; /help lists them)\n");
    }
    return true;
  }

  // The user's turn and the model's reply; a turn that cannot run leaves
  // the conversation as it was.
  void turn(const std::string& line) {
    messages_.push_back({{"role", "user"}, {"content", line}});
    std::vector<int32_t> fresh;
    if (!prompt_tokens(fresh)) {
      messages_.erase(messages_.end() - 1);
      return;
    }
    std::string reply;
    ReplyOptions go;
    go.max_tokens = o_.max_tokens;
    go.sampling.temperature = o_.temperature;
    go.sampling.seed = seed_++;
    go.speculation = o_.spec.options(draft_.get());
    ModelRunner runner(*model_);
    auto result = generate(runner, *tok_, fresh, go, [&](int32_t, const std::string& piece) {
      reply += piece;
      std::fputs(piece.c_str(), stdout);
      std::fflush(stdout);
      return !g_interrupted.load();
    });
    if (!result.ok()) {
      std::printf("\n(%s)\n", result.status().message().c_str());
      model_->reset();
      held_.clear();
      messages_.erase(messages_.end() - 1);
      return;
    }
    held_.insert(held_.end(), fresh.begin(), fresh.end());
    // The model holds every generated token except the last one sampled.
    if (!result->tokens.empty()) held_.insert(held_.end(), result->tokens.begin(), result->tokens.end() - 1);
    model_->truncate(static_cast<int64_t>(held_.size()));
    held_.resize(static_cast<size_t>(model_->n_past()));
    messages_.push_back({{"role", "assistant"}, {"content", reply}});
    const double n_decode = result->tokens.size() > 1 ? static_cast<double>(result->tokens.size() - 1) : 0;
    const double tps = result->gen_seconds > 0 ? n_decode / result->gen_seconds : 0;
    std::printf("%s\n[%zu tokens, %.1f tokens/s%s]\n", result->finish == FinishReason::kCancelled ? "\n(stopped)" : "",
                result->tokens.size(), tps, result->finish == FinishReason::kLength ? ", length limit" : "");
  }

 private:
  void reset() {
    messages_ = nlohmann::ordered_json::array();
    if (!system_.empty()) messages_.push_back({{"role", "system"}, {"content", system_}});
  }

  void save(const std::string& path) const {
    // Closed before "(saved" is printed: the message promises the bytes are
    // in the file, and a full disk shows up only at the flush.
    std::ofstream out(path);
    out << messages_.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) << "\n";
    out.close();
    std::printf(out ? "(saved %zu messages)\n" : "(cannot write that file)\n", messages_.size());
  }

  void load(const std::string& path) {
    std::ifstream in(path);
    try {
      auto loaded = nlohmann::ordered_json::parse(in);
      auto normalized = normalize_messages(loaded);
      if (!normalized.ok()) throw std::runtime_error(normalized.status().message());
      messages_ = std::move(normalized).value();
      std::printf("(loaded %zu messages)\n", messages_.size());
    } catch (const std::exception& e) {
      std::printf("(cannot load: %s)\n", e.what());
    }
  }

  // Renders the whole conversation and rewinds the KV cache to the prefix it
  // shares with what the model holds; `fresh` is the rest, to evaluate.
  bool prompt_tokens(std::vector<int32_t>& fresh) {
    const Vocab& vocab = tok_->vocab();
    ChatContext ctx;
    ctx.messages = messages_;
    ctx.add_generation_prompt = true;
    ctx.bos_token = vocab.text_of(vocab.bos);
    ctx.eos_token = vocab.text_of(vocab.eos);
    auto text = tmpl_.render(ctx);
    if (!text.ok()) {
      std::printf("(%s)\n", text.status().message().c_str());
      return false;
    }
    const std::vector<int32_t> ids = tok_->encode_chat(*text);
    size_t common = 0;
    while (common < held_.size() && common < ids.size() && held_[common] == ids[common]) ++common;
    if (common == ids.size()) --common;  // at least one token must be evaluated for logits
    model_->truncate(static_cast<int64_t>(common));
    // Sliding-window layers may not be able to rewind that far: then the
    // model starts over, and holds less than asked.
    common = static_cast<size_t>(model_->n_past());
    held_.assign(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(common));
    fresh.assign(ids.begin() + static_cast<std::ptrdiff_t>(common), ids.end());
    if (static_cast<int64_t>(ids.size()) >= model_->n_ctx()) {
      std::printf("(the conversation no longer fits the context of %lld tokens; /reset to start over)\n",
                  static_cast<long long>(model_->n_ctx()));
      return false;
    }
    return true;
  }

  const ChatOptions& o_;
  std::unique_ptr<Model> model_;
  std::unique_ptr<Model> draft_;  // --draft-model; null without
  std::shared_ptr<Tokenizer> tok_;
  ChatTemplate tmpl_;
  std::string system_;
  nlohmann::ordered_json messages_;
  std::vector<int32_t> held_;  // tokens in the KV cache, in order
  uint64_t seed_;
};

void chat(const ChatOptions& o) {
  ModelOptions mo;
  mo.n_threads = o.threads;
  mo.n_ctx = o.ctx;
  mo.device = o.device;
  mo.f16_as_bf16 = o.f16_as_bf16;
  apply_kv_cache_flags(o.kv_cache, mo);
  mo.lora = parse_lora_flags(o.lora);
  auto model = load_model(o.model, mo, o.folder);
  auto tok = Tokenizer::from_gguf(model->file());
  if (!tok.ok()) throw Failure{tok.status().message()};
  auto tmpl = ChatTemplate::from_gguf(model->file());
  if (!tmpl.ok()) throw Failure{tmpl.status().message()};
  auto draft = load_draft_model(o.spec, *model, **tok, mo);
  ChatSession session(o, std::move(model), std::move(draft), *tok, std::move(tmpl).value());

  struct sigaction sa {};
  sa.sa_handler = on_sigint;
  sigaction(SIGINT, &sa, nullptr);

  std::printf("osprey chat: %s (template '%s'). %s", o.model.c_str(), session.template_name().c_str(), kHelp);
  std::string line;
  for (;;) {
    std::printf("\n> ");
    std::fflush(stdout);
    g_interrupted = false;
    if (!std::getline(std::cin, line)) {
      if (g_interrupted && std::cin.eof() == false) {
        std::cin.clear();
        continue;
      }
      break;
    }
    if (line.empty()) continue;
    if (line[0] == '/') {
      if (!session.command(line)) break;
      continue;
    }
    session.turn(line);
  }
  std::printf("\n");
}

}  // namespace

void register_chat(CLI::App& app) {
  auto o = std::make_shared<ChatOptions>();
  CLI::App* cmd = app.add_subcommand("chat", "Talk to a model in the terminal, through its chat template");
  cmd->add_option("-m,--model", o->model, "GGUF model file, or a Hugging Face model folder (converted as it loads)")->required()->envname("OSPREY_MODEL");
  cmd->add_option("--system", o->system, "System prompt");
  cmd->add_option("-n,--max-tokens", o->max_tokens, "Longest reply in tokens")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 20));
  cmd->add_option("--temp", o->temperature, "Temperature; 0 is greedy")->capture_default_str()->check(CLI::Range(0.0f, 10.0f));
  add_speculation_options(*cmd, o->spec);
  cmd->add_option("-s,--seed", o->seed, "Random seed (-1: random)")->capture_default_str();
  cmd->add_option("-t,--threads", o->threads, "Threads (0: all cores)")->capture_default_str()->check(CLI::Range(0, 1024));
  cmd->add_option("-c,--ctx-size", o->ctx, "Context size in tokens (0: the model's, at most 4096)")
      ->capture_default_str()->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
  add_kv_cache_options(*cmd, o->kv_cache);
  add_device_option(*cmd, o->device);
  add_f16_as_bf16_flag(*cmd, o->f16_as_bf16);
  add_folder_options(*cmd, o->folder);
  add_lora_options(*cmd, o->lora);
  cmd->callback([o] { chat(*o); });
}

}  // namespace osprey::cli
