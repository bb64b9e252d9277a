#include "server/server.h"

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <memory>
#include <optional>
#include <thread>
#include <unordered_map>

#include "core/log.h"
#include "engine/scheduler.h"
#include "grammar/grammar.h"
#include "grammar/json_schema.h"
#include "kernels/dispatch.h"
#include "convert/hf_to_gguf.h"
#include "core/thread_pool.h"
#include "models/model.h"
#include "server/completion_reply.h"
#include "server/constraint_vocabulary.h"
#include "server/http.h"
#include "engine/model_draft.h"
#include "server/metrics.h"
#include "server/responses_reply.h"
#include "server/embeddings_api.h"
#include "server/rerank_api.h"
#include "server/responses_request.h"
#include "server/web_assets.h"
#include "server/prefix_key.h"
#include "server/openai_api.h"
#include "server/reply_parser.h"
#include "server/request_fields.h"
#include "template/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace osprey::server {
namespace {

using Clock = std::chrono::steady_clock;

// Compiled grammars by their text, so a schema sent again is not compiled
// again and its masks found so far are reused.
class GrammarCache {
 public:
  Expected<std::shared_ptr<grammar::GrammarMasks>> get(const std::string& gbnf) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = compiled_.find(gbnf); it != compiled_.end()) return it->second;
    }
    OSPREY_ASSIGN_OR_RETURN(grammar::Grammar g, grammar::Grammar::parse(gbnf));
    auto masks = std::make_shared<grammar::GrammarMasks>(std::make_shared<const grammar::Grammar>(std::move(g)));
    std::lock_guard<std::mutex> lock(mu_);
    if (compiled_.size() >= 64) compiled_.clear();
    compiled_.emplace(gbnf, masks);
    return masks;
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<grammar::GrammarMasks>> compiled_;
};

// Everything that exists once the model has loaded.
struct Engine {
  std::unique_ptr<Model> model;
  std::unique_ptr<Model> draft_model;  // --draft-model; outlives the scheduler, whose sequences draft with it
  std::shared_ptr<Tokenizer> tokenizer;
  std::optional<ChatTemplate> chat_template;
  std::unique_ptr<ModelBatch> batch;  // the model as the scheduler sees it
  std::unique_ptr<Scheduler> scheduler;
  // Structured output: the vocabulary as constraints see it, and the
  // grammars compiled so far.
  ConstraintVocabulary vocabulary;
  GrammarCache grammars;
};

class Api {
 public:
  Api(const ServeOptions& o, Metrics& metrics) : opts_(o), metrics_(metrics) {
    model_name_ = o.model_alias.empty() ? std::filesystem::path(o.model_path).filename().string() : o.model_alias;
  }

  void set_engine(std::unique_ptr<Engine> e) {
    engine_ = std::move(e);
    ready_ = true;
  }
  Engine* engine() { return ready_ ? engine_.get() : nullptr; }
  // SIGTERM: /ready reports it, and connections close after each response.
  void start_draining() { draining_ = true; }
  void set_http(const http::Server* server) { http_ = server; }

  // Answers one request. A BadRequest thrown by any field accessor becomes
  // its 400; anything else unexpected becomes a 500 logged with the request
  // id, and the server goes on serving.
  void handle(const http::Request& req, http::Response& res) {
    const std::string endpoint = route_name(req.path);
    try {
      handle_route(req, res);
    } catch (const BadRequest& e) {
      if (!res.sent()) send_error(res, e.error);
      else res.keep_alive = false;
    } catch (const std::exception& e) {
      internal_error(req, res, e.what());
    } catch (...) {
      internal_error(req, res, "an unknown exception");
    }
    metrics_.count_request(endpoint, res.status());
  }

 private:
  static std::string route_name(const std::string& path) {
    static const char* kKnown[] = {"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings", "/v1/rerank", "/rerank", "/v1/models", "/tokenize", "/detokenize",
                                   "/apply-template", "/health", "/ready", "/metrics", "/lora-adapters"};
    for (const char* k : kKnown)
      if (path == k) return k;
    if (find_web_asset(path) != nullptr) return "web page";
    return "other";
  }

  void send_json(http::Response& res, int status, const json& body) { res.send(status, "application/json", dump(body)); }
  void send_error(http::Response& res, const ApiError& e) { send_json(res, e.status, error_body(e)); }
  void send_error(http::Response& res, int status, const std::string& message, const std::string& type,
                  const std::string& param = "") {
    ApiError e;
    e.status = status;
    e.message = message;
    e.type = type;
    e.param = param;
    send_error(res, e);
  }

  void internal_error(const http::Request& req, http::Response& res, const std::string& what) {
    log::error("request " + req.id + " (" + req.method + " " + req.path + ") failed: " + what);
    if (res.sent()) {
      res.keep_alive = false;  // a stream already under way ends here
      return;
    }
    send_error(res, 500, "internal error while handling request " + req.id + "; it is logged under that id",
               "server_error");
  }

  void handle_route(const http::Request& req, http::Response& res) {
    const std::string& p = req.path;
    if (p == "/health") return send_json(res, 200, json{{"status", "ok"}});
    if (draining_) res.keep_alive = false;  // retire pooled proxy connections to a replica going away
    if (p == "/ready") {
      if (draining_) return send_json(res, 503, json{{"status", "draining"}});
      if (!ready_) return send_json(res, 503, json{{"status", "loading"}});
      return send_json(res, 200, json{{"status", "ready"}});
    }
    const bool get = req.method == "GET", post = req.method == "POST";
    if (p == "/metrics" && get && opts_.public_metrics) return metrics(res);
    // The page holds no data, so it needs no key; it asks for one when the API answers 401.
    if (get && opts_.web_page)
      if (const WebAsset* asset = find_web_asset(p)) return send_asset(*asset, res);
    if (!opts_.api_key.empty()) {
      const std::string* auth = req.header("authorization");
      if (auth == nullptr || *auth != "Bearer " + opts_.api_key)
        return send_error(res, 401, "invalid or missing API key (send Authorization: Bearer KEY)", "authentication_error");
    }
    if (p == "/metrics" && get) return metrics(res);
    if (p == "/v1/models" && get) return models(res);
    if (p == "/lora-adapters" && get) return lora_adapters(res);
    static const char* kPost[] = {"/v1/chat/completions", "/v1/completions", "/v1/responses", "/v1/embeddings",
                                  "/v1/rerank", "/rerank", "/tokenize", "/detokenize", "/apply-template"};
    bool known_post = false;
    for (const char* k : kPost) known_post |= p == k;
    if (!known_post) {
      if (p == "/metrics" || p == "/v1/models" || p == "/lora-adapters") return send_error(res, 405, "use GET for " + p, "invalid_request_error");
      return send_error(res, 404, "no such endpoint: " + req.method + " " + p, "not_found_error");
    }
    if (!post) return send_error(res, 405, "use POST for " + p, "invalid_request_error");
    Engine* e = engine();
    if (e == nullptr) return send_error(res, 503, "the model is still loading", "unavailable_error");
    const json body_json = parse_request_body(req.body);
    const Fields body(body_json, "");
    if (p == "/tokenize") return tokenize(*e, body, res);
    if (p == "/detokenize") return detokenize(*e, body, res);
    if (p == "/apply-template") return send_json(res, 200, json{{"prompt", render_chat(*e, body)}});
    if (p == "/v1/embeddings") return embeddings(*e, body, res);
    if (p == "/v1/rerank" || p == "/rerank") return rerank(*e, body, res);
    if (!e->model->can_generate())
      return send_error(res, 400,
                        "this model (" + e->model->config().arch +
                            ") is an encoder: it gives embeddings (POST /v1/embeddings), not text",
                        "invalid_request_error");
    if (p == "/v1/responses") return respond(*e, req, body, res);
    return complete(*e, req, body, res, p == "/v1/chat/completions");
  }

  // /v1/embeddings: each input a sequence of its own, sharing the
  // scheduler's passes with whatever else runs (server/embeddings_api.h).
  void embeddings(Engine& e, const Fields& body, http::Response& res) {
    if (e.model->config().pooling == Pooling::kRank)
      return send_error(res, 400, "this model is a reranker: it scores (query, document) pairs at POST /v1/rerank",
                        "invalid_request_error");
    EmbeddingsLimits limits;
    limits.n_vocab = e.model->config().n_vocab;
    limits.n_embd = e.model->config().n_embd;
    limits.n_ctx = e.model->n_ctx();
    limits.matryoshka = opts_.matryoshka;
    const EmbeddingsRequest request = parse_embeddings_request(body, *e.tokenizer, limits);
    auto vectors = pool_inputs(e, request.inputs, res);
    if (vectors) send_json(res, 200, embeddings_reply(std::move(*vectors), request, model_name_));
  }

  // /v1/rerank: each (query, document) pair an input of the reranker (server/rerank_api.h).
  void rerank(Engine& e, const Fields& body, http::Response& res) {
    if (e.model->config().pooling != Pooling::kRank)
      return send_error(res, 400,
                        std::string("this model is not a reranker (its pooling is ") +
                            pooling_name(e.model->config().pooling) +
                            "); /v1/rerank needs a cross-encoder whose file says pooling_type rank",
                        "invalid_request_error");
    const RerankRequest request = parse_rerank_request(body, *e.tokenizer, e.model->n_ctx());
    auto rows = pool_inputs(e, request.inputs, res);
    if (!rows) return;
    std::vector<float> scores;
    for (const auto& r : *rows) scores.push_back(r.at(0));
    send_json(res, 200, rerank_reply(scores, request, model_name_));
  }

  // Runs inputs as embedding requests through the scheduler and returns
  // their pooled rows in order; nullopt when it has answered `res` itself
  // (shutting down, a failed pass) or the client has gone. Inputs beyond the
  // queue's room wait their turn here rather than fail: one request may carry many.
  std::optional<std::vector<std::vector<float>>> pool_inputs(Engine& e, const std::vector<std::vector<int32_t>>& inputs,
                                                             http::Response& res) {
    std::vector<std::shared_ptr<GenerationRequest>> reqs;
    for (const std::vector<int32_t>& input : inputs) {
      auto r = std::make_shared<GenerationRequest>();
      r->prompt = input;
      r->embed = true;
      r->deadline = Clock::now() + std::chrono::seconds(opts_.request_timeout_s);
      reqs.push_back(std::move(r));
    }
    auto cancel = [&] {
      for (auto& r : reqs) r->cancelled = true;
    };
    std::vector<std::vector<float>> rows(reqs.size());
    size_t next = 0, done = 0;
    while (done < reqs.size()) {
      while (next < reqs.size() && e.scheduler->submit(reqs[next])) ++next;
      if (next == done && !e.scheduler->accepting()) {
        cancel();
        res.keep_alive = false;
        send_error(res, 503, "the server is shutting down; send the request to another replica", "unavailable_error");
        return std::nullopt;
      }
      auto ev = reqs[done]->next_event(std::chrono::milliseconds(100));
      if (!ev) {
        if (res.peer_closed()) {
          cancel();
          return std::nullopt;
        }
        continue;
      }
      if (!ev->error.empty()) {
        cancel();
        send_error(res, 500, ev->error, "server_error");
        return std::nullopt;
      }
      if (ev->done) rows[done++] = std::move(ev->embedding);
    }
    return rows;
  }

  // The page may load nothing but its own files and talk to nothing but this server.
  static void send_asset(const WebAsset& asset, http::Response& res) {
    res.send(200, std::string(asset.content_type), std::string(asset.body),
             {{"Cache-Control", "no-cache"},
              {"X-Content-Type-Options", "nosniff"},
              {"Referrer-Policy", "no-referrer"},
              {"Content-Security-Policy",
               "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"}});
  }

  void metrics(http::Response& res) {
    Gauges g;
    g.draining = draining_;
    if (http_ != nullptr) g.open_connections = http_->open_connections();
    if (Engine* e = engine()) {
      g.queued = e->scheduler->queued();
      g.running = e->scheduler->running();
      g.kv_blocks_used = e->model->kv().used_blocks();
      g.kv_blocks_cached = e->model->kv().cached_blocks();
      g.kv_blocks_total = e->model->kv().n_blocks();
      g.kv_tokens_total = g.kv_blocks_total * KvCache::kBlockSize;
      g.kv_bytes = e->model->kv_bytes();
    }
    res.send(200, "text/plain; version=0.0.4", metrics_.render(g));
  }

  void models(http::Response& res) {
    json m{{"id", model_name_}, {"object", "model"}, {"created", created_}, {"owned_by", "osprey"}};
    send_json(res, 200, json{{"object", "list"}, {"data", json::array({m})}});
  }

  // The adapters loaded with --lora, by id, with the scales requests get
  // when they do not choose (llama-server's GET /lora-adapters).
  void lora_adapters(http::Response& res) {
    Engine* e = engine();
    if (e == nullptr) return send_error(res, 503, "the model is still loading", "unavailable_error");
    json list = json::array();
    for (size_t i = 0; i < e->model->adapters().size(); ++i) {
      const LoraAdapter& a = e->model->adapters()[i];
      list.push_back(json{{"id", i}, {"path", a.path}, {"scale", a.scale}, {"rank", a.rank}, {"alpha", a.alpha}});
    }
    send_json(res, 200, list);
  }

  void tokenize(Engine& e, const Fields& body, http::Response& res) {
    const std::string content = body.required_string("content");
    const bool add_special = body.boolean("add_special", false);
    const bool parse_special = body.boolean("parse_special", true);
    send_json(res, 200, json{{"tokens", e.tokenizer->encode(content, add_special, parse_special)}});
  }

  void detokenize(Engine& e, const Fields& body, http::Response& res) {
    const json& tokens = body.required_array("tokens");
    send_json(res, 200, json{{"content", e.tokenizer->decode(token_ids(tokens, "tokens", e.tokenizer->vocab().size()))}});
  }

  std::string render_chat(Engine& e, const Fields& body) {
    ChatRequest chat = parse_chat_request(body);
    return render_chat(e, chat);
  }

  std::string render_chat(Engine& e, const ChatRequest& chat) {
    ChatContext ctx;
    ctx.messages = chat.messages;
    ctx.tools = chat.tools;
    ctx.add_generation_prompt = chat.add_generation_prompt;
    ctx.extra = chat.template_kwargs;
    ctx.bos_token = e.tokenizer->vocab().text_of(e.tokenizer->vocab().bos);
    ctx.eos_token = e.tokenizer->vocab().text_of(e.tokenizer->vocab().eos);
    auto text = e.chat_template->render(ctx);
    if (!text.ok()) reject("messages", text.status().message());
    return std::move(text).value();
  }

  // /v1/completions' prompt: a string, an array of one string, or token ids.
  static std::vector<int32_t> completion_prompt(Engine& e, const Fields& body) {
    const json& p = body.required("prompt");
    if (p.is_string()) return e.tokenizer->encode_chat(p.get<std::string>());
    if (p.is_array() && p.size() == 1 && p[0].is_string()) return e.tokenizer->encode_chat(p[0].get<std::string>());
    if (p.is_array() && !p.empty() && (p[0].is_number_integer() || p[0].is_number_unsigned()))
      return token_ids(p, "prompt", e.model->config().n_vocab);
    body.fail("prompt", "'prompt' must be a string, an array of one string, or an array of token ids");
  }

  // /v1/responses: the request restated as a chat completion (server/responses_request.h),
  // planned and submitted as one, and answered as a Response (server/responses_reply.h).
  void respond(Engine& e, const http::Request& req, const Fields& body, http::Response& res) {
    const ResponsesRequest request = parse_responses_request(body);
    CompletionPlan plan;
    try {
      plan = plan_completion(e, Fields(request.chat_body, ""), true);
    } catch (BadRequest& err) {
      err.error.param = responses_param(err.error.param);
      throw;
    }
    if (plan.prompt.empty()) return send_error(res, 400, "the prompt is empty", "invalid_request_error", "input");
    if (auto err = context_error(e, plan)) {
      err->param = "input";
      return send_error(res, *err);
    }
    std::vector<std::shared_ptr<GenerationRequest>> reqs = generation_requests(e, plan);
    if (!submit(e, reqs, res)) return;
    ResponsesReply reply(reply_shape(plan, "resp_"), request.echo, *e.tokenizer, reqs[0],
                         static_cast<int64_t>(plan.prompt.size()));
    if (plan.settings.stream) reply.stream(res, routing_headers(req, plan));
    else reply.collect(res, routing_headers(req, plan));
  }

  // What a completion request asks for, read and checked.
  struct CompletionPlan {
    bool chat = false;
    CompletionSettings settings;
    std::vector<int32_t> prompt;
    int64_t max_tokens = 0;
    ReplyFormat format;
    std::vector<std::string> tool_names;
    bool parallel_calls = true;
    bool parse_reply = false;  // split into content, reasoning and tool calls
    std::vector<float> lora;   // the request's adapter scales (empty: the server's)
    std::shared_ptr<grammar::GrammarMasks> constrained;
  };

  // /v1/chat/completions and /v1/completions: parse, submit, then stream or
  // collect the reply (server/completion_reply.h).
  void complete(Engine& e, const http::Request& req, const Fields& body, http::Response& res, bool chat) {
    CompletionPlan plan = plan_completion(e, body, chat);
    if (plan.prompt.empty())
      return send_error(res, 400, "the prompt is empty", "invalid_request_error", chat ? "messages" : "prompt");
    if (auto err = context_error(e, plan)) return send_error(res, *err);
    std::vector<std::shared_ptr<GenerationRequest>> reqs = generation_requests(e, plan);
    if (!submit(e, reqs, res)) return;
    CompletionReply reply(reply_shape(plan, chat ? "chatcmpl-" : "cmpl-"), *e.tokenizer, std::move(reqs),
                          static_cast<int64_t>(plan.prompt.size()));
    if (plan.settings.stream) reply.stream(res, routing_headers(req, plan));
    else reply.collect(res, routing_headers(req, plan));
  }

  // The routing key a proxy sticks to this replica (server/prefix_key.h).
  ExtraHeaders routing_headers(const http::Request& req, const CompletionPlan& plan) const {
    return {{kPrefixKeyHeader, client_prefix_key(req.header("x-osprey-prefix-key"))
                                   .value_or(prefix_key(plan.prompt, KvCache::kBlockSize, opts_.prefix_key_blocks))}};
  }

  ReplyShape reply_shape(const CompletionPlan& plan, const std::string& id_prefix) const {
    ReplyShape shape;
    shape.chat = plan.chat;
    shape.id = id_prefix + random_id();
    shape.created = static_cast<int64_t>(std::time(nullptr));
    shape.model = model_name_;
    shape.fingerprint = std::string("osprey-0.1.0-") + kernels::isa_name(kernels::active_isa());
    shape.top_logprobs = plan.settings.top_logprobs;
    shape.include_usage = plan.settings.include_usage;
    shape.parse = plan.parse_reply;
    shape.format = plan.format;
    shape.tool_names = plan.tool_names;
    shape.parallel_tool_calls = plan.parallel_calls;
    return shape;
  }

  // Reads the body: settings, the prompt (a chat rendered through its
  // template), the reply format, tools and the grammar that constrains the
  // reply. A bad field throws BadRequest naming it.
  CompletionPlan plan_completion(Engine& e, const Fields& body, bool chat) {
    CompletionPlan plan;
    plan.chat = chat;
    CompletionSettings& settings = plan.settings;
    settings = parse_settings(body, chat, static_cast<int32_t>(e.model->config().n_vocab));
    plan.lora = parse_lora(body, e.model->adapters().size());
    body.optional_string("model");
    ReplyFormat& format = plan.format;
    if (chat) {
      const ChatRequest request = parse_chat_request(body);
      const std::string text = render_chat(e, request);
      plan.prompt = e.tokenizer->encode_chat(text);
      format = reasoning_format_of(e.chat_template->source(), text);
      if (!request.tools.is_null() && !request.tools.empty()) {
        for (const auto& t : request.tools) plan.tool_names.push_back(t["function"]["name"].get<std::string>());
        if (request.tool_choice == "auto") {
          format.tools = tool_format_of(e.chat_template->source());
          if (format.tools == ToolFormat::kNone)
            reject("tools", "the chat template '" + e.chat_template->name() + "' writes no tool-call format osprey can read "
                            "(Hermes <tool_call>, Mistral [TOOL_CALLS], Llama 3 JSON, Functionary >>>), so its tool calls "
                            "could not be returned as tool_calls; use tool_choice 'required' or a named function, which "
                            "constrain the reply to a call, or --chat-template");
        } else {
          // The reply is constrained to one call of the offered functions.
          if (!settings.grammar.empty())
            reject("tool_choice", "a forced tool call and a JSON response_format or grammar cannot be combined");
          auto gbnf = grammar::json_schema_to_gbnf(forced_call_schema(request));
          if (!gbnf.ok()) reject("tools", gbnf.status().message());
          settings.grammar = std::move(gbnf).value();
          settings.grammar_param = "tools";
          format.tools = ToolFormat::kForced;
        }
      }
      plan.parallel_calls = request.parallel_tool_calls;
    } else {
      plan.prompt = completion_prompt(e, body);
    }
    // A thinking model whose prompt leaves it free to open a <think> block
    // (Qwen3) may still reason before a constrained answer: our grammars let
    // the block come first. (When the prompt opens the block itself, the
    // constraint waits for </think> instead, in generation_requests.)
    if (!settings.grammar.empty() && settings.grammar_param != "grammar" && format.reasoning && !format.starts_in_reasoning)
      settings.grammar = grammar::with_optional_block(settings.grammar, "<think>", "</think>");
    if (!settings.grammar.empty()) {
      auto g = e.grammars.get(settings.grammar);
      if (!g.ok()) reject(settings.grammar_param, g.status().message());
      plan.constrained = std::move(g).value();
    }
    if (settings.ignore_eos && plan.constrained)
      reject("ignore_eos", "'ignore_eos' cannot be combined with a grammar, a JSON response_format or a forced tool call, which end the reply themselves");
    plan.parse_reply = chat && (format.tools != ToolFormat::kNone || format.reasoning);
    const int64_t n_prompt = static_cast<int64_t>(plan.prompt.size());
    plan.max_tokens = settings.max_tokens.value_or(std::max<int64_t>(1, e.model->n_ctx() - n_prompt));
    return plan;
  }

  // OpenAI's error when the prompt and max_tokens do not fit the context.
  static std::optional<ApiError> context_error(Engine& e, const CompletionPlan& plan) {
    const int64_t n_ctx = e.model->n_ctx();
    const int64_t n_prompt = static_cast<int64_t>(plan.prompt.size());
    const int64_t max_tokens = plan.max_tokens;
    if (max_tokens <= n_ctx - n_prompt) return std::nullopt;  // not n_prompt + max_tokens, which a huge max_tokens overflows
    const char* what = plan.chat ? "messages" : "prompt";
    ApiError err;
    err.message = "This model's maximum context length is " + std::to_string(n_ctx) + " tokens. However, you requested " +
                  (max_tokens > n_ctx ? "more than " + std::to_string(n_ctx) : std::to_string(n_prompt + max_tokens)) +
                  " tokens (" + std::to_string(n_prompt) + " in the " + what + ", " + std::to_string(max_tokens) +
                  " in the completion). Please reduce the length of the " + what + " or completion.";
    err.param = what;
    err.code = "context_length_exceeded";
    return err;
  }

  // One generation request per choice (n), each with its own seed.
  std::vector<std::shared_ptr<GenerationRequest>> generation_requests(Engine& e, const CompletionPlan& plan) {
    const CompletionSettings& settings = plan.settings;
    std::vector<std::shared_ptr<GenerationRequest>> reqs;
    for (int i = 0; i < settings.n; ++i) {
      auto r = std::make_shared<GenerationRequest>();
      r->prompt = plan.prompt;
      r->lora = plan.lora;
      r->reply.sampling = settings.sampling;
      r->reply.sampling.seed = settings.sampling.seed + static_cast<uint64_t>(i);  // choices differ, reproducibly
      r->reply.max_tokens = plan.max_tokens;
      r->reply.ignore_eos = settings.ignore_eos;
      r->reply.stop = settings.stop;
      r->reply.top_logprobs = settings.top_logprobs;
      r->reply.speculation = opts_.speculation;
      r->reply.speculation.draft_model = e.draft_model.get();
      if (plan.constrained)
        r->reply.constraint = std::make_shared<grammar::TokenConstraint>(plan.constrained, e.vocabulary.trie, e.vocabulary.end_tokens);
      // A schema applies to the answer, so a reply that starts inside the
      // reasoning is constrained only once the reasoning is closed.
      if (plan.constrained && plan.format.starts_in_reasoning) r->reply.constraint_after = "</think>";
      if (plan.parse_reply || plan.constrained) r->reply.render_tokens = e.vocabulary.marker_tokens;
      r->deadline = Clock::now() + std::chrono::seconds(opts_.request_timeout_s);
      reqs.push_back(r);
    }
    return reqs;
  }

  // Queues every choice, or none: a full queue is 429, a draining server 503.
  bool submit(Engine& e, const std::vector<std::shared_ptr<GenerationRequest>>& reqs, http::Response& res) {
    for (auto& r : reqs) {
      if (e.scheduler->submit(r)) continue;
      for (auto& x : reqs) x->cancelled = true;
      if (!e.scheduler->accepting()) {
        res.keep_alive = false;
        send_error(res, 503, "the server is shutting down; send the request to another replica", "unavailable_error");
      } else {
        send_error(res, 429, "the server is busy: the request queue is full; retry later", "rate_limit_error");
      }
      return false;
    }
    return true;
  }

  static std::string random_id() {
    static std::atomic<uint64_t> counter{0};
    static const uint64_t start = static_cast<uint64_t>(Clock::now().time_since_epoch().count());
    char buf[32];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(start * 31 + ++counter));
    return buf;
  }

  const ServeOptions& opts_;
  Metrics& metrics_;
  std::string model_name_;
  const int64_t created_ = static_cast<int64_t>(std::time(nullptr));
  std::unique_ptr<Engine> engine_;
  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  const http::Server* http_ = nullptr;
};

Expected<std::unique_ptr<Engine>> load_engine(const ServeOptions& o, Metrics& metrics) {
  auto e = std::make_unique<Engine>();
  ModelOptions mo;
  mo.n_threads = o.n_threads;
  mo.n_ctx = o.ctx_size;
  mo.n_seq_max = o.parallel;
  mo.prefix_cache = true;
  mo.full_window_cache = o.full_window_cache;
  if (o.kv_size > 0) mo.kv_blocks = (o.kv_size + KvCache::kBlockSize - 1) / KvCache::kBlockSize;
  mo.kv_bytes_budget = o.kv_bytes;
  mo.cache_type_k = o.cache_type_k;
  mo.cache_type_v = o.cache_type_v;
  mo.lora = o.lora;
  mo.device = o.device;
  mo.f16_as_bf16 = o.f16_as_bf16;
  // A Hugging Face folder is converted on the way in.
  ConvertOptions co;
  co.n_threads = o.n_threads > 0 ? o.n_threads : default_thread_count();
  co.type = o.folder_type;
  OSPREY_ASSIGN_OR_RETURN(GgufFile file, open_model_file(o.model_path, co, [](const ConvertProgress&) {}));
  OSPREY_ASSIGN_OR_RETURN(e->model, Model::from_file(std::move(file), mo));
  OSPREY_ASSIGN_OR_RETURN(e->tokenizer, Tokenizer::from_gguf(e->model->file()));
  if (o.chat_template_file.empty()) {
    OSPREY_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::from_gguf(e->model->file()));
    e->chat_template = std::move(t);
  } else {
    std::ifstream in(o.chat_template_file, std::ios::binary);
    std::stringstream source;
    source << in.rdbuf();
    if (!in) return IoError("cannot read the chat template " + o.chat_template_file);
    OSPREY_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::parse(source.str(), o.chat_template_file));
    e->chat_template = std::move(t);
  }
  if (!o.draft_model_path.empty()) {
    // Its own KV sequence beside each of the model's, as long.
    ModelOptions dm;
    dm.n_threads = o.n_threads;
    dm.n_ctx = e->model->n_ctx();
    dm.n_seq_max = o.parallel;
    OSPREY_ASSIGN_OR_RETURN(GgufFile draft_file, open_model_file(o.draft_model_path, co, [](const ConvertProgress&) {}));
    auto draft = Model::from_file(std::move(draft_file), dm);
    if (!draft.ok()) return InvalidArgument("--draft-model " + o.draft_model_path + ": " + draft.status().message());
    auto draft_tokens = Tokenizer::from_gguf((*draft)->file());
    if (!draft_tokens.ok()) return InvalidArgument("--draft-model " + o.draft_model_path + ": " + draft_tokens.status().message());
    if (Status st = check_draft_model(*e->model, *e->tokenizer, **draft, **draft_tokens); !st.ok())
      return InvalidArgument("--draft-model " + o.draft_model_path + ": " + st.message());
    e->draft_model = std::move(draft).value();
  }
  e->vocabulary = constraint_vocabulary(*e->tokenizer);
  SchedulerOptions so;
  so.max_queue = o.max_queue;
  e->batch = std::make_unique<ModelBatch>(*e->model);
  e->scheduler = std::make_unique<Scheduler>(*e->batch, *e->tokenizer, &metrics, so);
  return e;
}

}  // namespace

int serve(const ServeOptions& o) {
  // Signals are taken by one thread with sigwait; every other thread,
  // including those created below, inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A client gone mid-write is an error code, never a signal that ends the process.
  ::signal(SIGPIPE, SIG_IGN);

  Metrics metrics;
  Api api(o, metrics);
  http::Server server;
  api.set_http(&server);
  http::ServerOptions ho;
  ho.host = o.host;
  ho.port = o.port;
  ho.max_body_bytes = o.max_body_bytes;
  if (Status st = server.listen(ho); !st.ok()) {
    std::fprintf(stderr, "osprey: error: %s\n", st.message().c_str());
    return 1;
  }
  log::info("listening on http://" + o.host + ":" + std::to_string(server.port()) + " (loading " + o.model_path + ")" +
            (o.web_page ? "; chat page at /" : ""));

  std::atomic<bool> load_failed{false};
  std::thread loader([&] {
    auto e = load_engine(o, metrics);
    if (!e.ok()) {
      log::error("cannot load the model: " + e.status().message());
      load_failed = true;
      server.stop();
      return;
    }
    const auto& m = *(*e)->model;
    char kv_mib[64];
    std::snprintf(kv_mib, sizeof kv_mib, "%.1f MiB", static_cast<double>(m.kv_bytes()) / (1 << 20));
    const std::string windows =
        m.window_kv().n_blocks() > 0
            ? " (sliding-window layers keep only their last " + std::to_string(m.config().n_swa) +
                  " positions; prompt prefixes are not reused: --full-window-cache)"
            : "";
    const int64_t pool_tokens = m.kv().n_blocks() * KvCache::kBlockSize;
    log::info("ready: " + m.config().arch + ", " + std::to_string(o.parallel) + " parallel sequences, context " +
              std::to_string(m.n_ctx()) + " per request, KV pool " + std::to_string(pool_tokens) + " tokens (" +
              std::to_string(pool_tokens / std::max<int64_t>(1, m.n_ctx())) + " full contexts), " + kv_mib + " as " +
              dtype_name(o.cache_type_k) + " keys and " + dtype_name(o.cache_type_v) + " values" + windows +
              ((*e)->model->can_generate() ? ", chat template '" + (*e)->chat_template->name() + "'"
                                           : (*e)->model->config().pooling == Pooling::kRank
                                                 ? std::string(", reranking only (/v1/rerank)")
                                                 : std::string(", embeddings only (") +
                                                       pooling_name((*e)->model->config().pooling) + " pooling)") +
              ", kernels " + kernels::isa_name(kernels::active_isa()) + ", device " + m.device_name() +
              ((*e)->draft_model ? ", drafting with " + o.draft_model_path
                                 : o.speculation.ngram ? std::string(", drafting by prompt lookup") : std::string()) +
              (m.adapters().empty() ? std::string()
                                    : ", " + std::to_string(m.adapters().size()) +
                                          " LoRA adapter(s) (GET /lora-adapters; requests choose with \"lora\")"));
    api.set_engine(std::move(e).value());
  });

  // Set once the server has stopped serving, so the signal thread exits
  // instead of waiting for a second signal that will not come.
  std::atomic<bool> finished{false};
  std::thread signal_waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    if (finished) return;
    api.start_draining();
    if (o.shutdown_delay_s > 0) {
      log::info("signal received: /ready now answers 503; serving " + std::to_string(o.shutdown_delay_s) +
                " s more so that load balancers move away, then draining");
      const timespec delay{o.shutdown_delay_s, 0};
      if (sigtimedwait(&signals, nullptr, &delay) > 0 && !finished) {
        log::warn("second signal: stopping now, cancelling running requests");
        if (Engine* e = api.engine()) e->scheduler->shutdown(/*cancel_running=*/true);
        server.stop();
        return;
      }
      if (finished) return;
    }
    log::info("draining: accepting no more requests, finishing those accepted (up to " +
              std::to_string(o.drain_timeout_s) + " s; a second signal stops at once)");
    if (Engine* e = api.engine()) e->scheduler->shutdown(/*cancel_running=*/false);
    server.stop();
    sigwait(&signals, &sig);
    if (finished) return;
    log::warn("second signal: cancelling running requests");
    if (Engine* e = api.engine()) e->scheduler->shutdown(/*cancel_running=*/true);
  });

  server.serve([&](const http::Request& req, http::Response& res) { api.handle(req, res); }, o.drain_timeout_s * 1000);
  loader.join();
  if (Engine* e = api.engine()) e->scheduler->shutdown(false);
  // Release the signal thread, wherever it waits.
  finished = true;
  pthread_kill(signal_waiter.native_handle(), SIGTERM);
  signal_waiter.join();
  if (!load_failed) log::info("stopped");
  return load_failed ? 1 : 0;
}

}  // namespace osprey::server
