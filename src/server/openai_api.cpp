#include "server/openai_api.h"

#include <cmath>
#include <random>

namespace osprey::server {
namespace {

ApiError bad(const std::string& param, const std::string& message) {
  ApiError e;
  e.message = message;
  e.param = param;
  return e;
}

// Reads an optional number field within [lo, hi].
std::optional<ApiError> number(const json& body, const char* name, double lo, double hi, float& out) {
  if (!body.contains(name) || body[name].is_null()) return std::nullopt;
  const json& v = body[name];
  if (!v.is_number()) return bad(name, std::string("'") + name + "' must be a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    return bad(name, std::string("'") + name + "' must be between " + json(lo).dump() + " and " + json(hi).dump() +
                         ", got " + v.dump());
  out = static_cast<float>(x);
  return std::nullopt;
}

std::optional<ApiError> integer(const json& body, const char* name, int64_t lo, int64_t hi, int64_t& out) {
  if (!body.contains(name) || body[name].is_null()) return std::nullopt;
  const json& v = body[name];
  if (!v.is_number_integer() && !v.is_number_unsigned())
    return bad(name, std::string("'") + name + "' must be an integer");
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX))
    return bad(name, std::string("'") + name + "' is too large");
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    return bad(name, std::string("'") + name + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                         ", got " + std::to_string(x));
  out = x;
  return std::nullopt;
}

std::optional<ApiError> boolean(const json& body, const char* name, bool& out) {
  if (!body.contains(name) || body[name].is_null()) return std::nullopt;
  if (!body[name].is_boolean()) return bad(name, std::string("'") + name + "' must be true or false");
  out = body[name].get<bool>();
  return std::nullopt;
}

}  // namespace

json error_body(const ApiError& e) {
  json err;
  err["message"] = e.message;
  err["type"] = e.type;
  err["param"] = e.param.empty() ? json(nullptr) : json(e.param);
  err["code"] = e.code.empty() ? json(nullptr) : json(e.code);
  return json{{"error", err}};
}

std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

std::optional<ApiError> check_messages(const json& body) {
  if (!body.contains("messages")) return bad("messages", "'messages' is required");
  const json& m = body["messages"];
  if (!m.is_array() || m.empty()) return bad("messages", "'messages' must be a non-empty array");
  static const char* kRoles[] = {"system", "developer", "user", "assistant", "tool", "function"};
  for (size_t i = 0; i < m.size(); ++i) {
    const std::string field = "messages[" + std::to_string(i) + "]";
    if (!m[i].is_object()) return bad(field, "'" + field + "' must be an object");
    if (!m[i].contains("role") || !m[i]["role"].is_string()) return bad(field + ".role", "'" + field + ".role' must be a string");
    const std::string role = m[i]["role"];
    bool known = false;
    for (const char* r : kRoles) known |= role == r;
    if (!known)
      return bad(field + ".role", "'" + field + ".role' is '" + role +
                                      "'; expected one of system, developer, user, assistant, tool");
  }
  return std::nullopt;
}

std::optional<ApiError> parse_settings(const json& body, bool chat, int32_t n_vocab, CompletionSettings& out) {
  SamplingParams& s = out.sampling;
  // OpenAI's defaults: plain sampling at temperature 1.
  s.temperature = 1.0f;
  s.top_p = 1.0f;
  s.top_k = 0;
  s.min_p = 0.0f;
  s.repeat_penalty = 1.0f;
  if (auto e = number(body, "temperature", 0, 2, s.temperature)) return e;
  if (auto e = number(body, "top_p", 0, 1, s.top_p)) return e;
  if (auto e = number(body, "min_p", 0, 1, s.min_p)) return e;
  if (auto e = number(body, "presence_penalty", -2, 2, s.presence_penalty)) return e;
  if (auto e = number(body, "frequency_penalty", -2, 2, s.frequency_penalty)) return e;
  if (auto e = number(body, "repetition_penalty", 0.01, 10, s.repeat_penalty)) return e;
  int64_t top_k = 0;
  if (auto e = integer(body, "top_k", 0, n_vocab, top_k)) return e;
  s.top_k = static_cast<int32_t>(top_k);
  if (s.top_p <= 0.0f) return bad("top_p", "'top_p' must be greater than 0");
  if ((s.presence_penalty != 0 || s.frequency_penalty != 0) && s.repeat_penalty == 1.0f) s.penalty_last_n = -1;

  int64_t seed = 0;
  if (body.contains("seed") && !body["seed"].is_null()) {
    if (!body["seed"].is_number_integer() && !body["seed"].is_number_unsigned())
      return bad("seed", "'seed' must be an integer");
    seed = body["seed"].is_number_unsigned() ? static_cast<int64_t>(body["seed"].get<uint64_t>()) : body["seed"].get<int64_t>();
    out.seeded = true;
  } else {
    seed = static_cast<int64_t>(std::random_device{}() ^ (uint64_t{std::random_device{}()} << 32));
  }
  s.seed = static_cast<uint64_t>(seed);

  int64_t max_tokens = 0;
  const char* max_name = body.contains("max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  if (body.contains(max_name) && !body[max_name].is_null()) {
    if (auto e = integer(body, max_name, 1, INT64_MAX, max_tokens)) return e;
    out.max_tokens = max_tokens;
  }
  int64_t n = 1;
  if (auto e = integer(body, "n", 1, 16, n)) return e;
  out.n = static_cast<int>(n);

  if (body.contains("stop") && !body["stop"].is_null()) {
    const json& st = body["stop"];
    if (st.is_string()) {
      out.stop.push_back(st.get<std::string>());
    } else if (st.is_array()) {
      if (st.size() > 16) return bad("stop", "'stop' takes at most 16 strings");
      for (const auto& x : st) {
        if (!x.is_string()) return bad("stop", "'stop' must be a string or an array of strings");
        out.stop.push_back(x.get<std::string>());
      }
    } else {
      return bad("stop", "'stop' must be a string or an array of strings");
    }
    for (const auto& x : out.stop)
      if (x.empty()) return bad("stop", "'stop' strings must not be empty");
  }

  if (body.contains("logit_bias") && !body["logit_bias"].is_null()) {
    const json& lb = body["logit_bias"];
    if (!lb.is_object()) return bad("logit_bias", "'logit_bias' must be an object of token id to bias");
    for (auto it = lb.begin(); it != lb.end(); ++it) {
      char* end = nullptr;
      const long id = std::strtol(it.key().c_str(), &end, 10);
      if (it.key().empty() || *end != '\0' || id < 0 || id >= n_vocab)
        return bad("logit_bias", "'logit_bias' key '" + it.key() + "' is not a token id (0.." + std::to_string(n_vocab - 1) + ")");
      if (!it.value().is_number() || std::fabs(it.value().get<double>()) > 100)
        return bad("logit_bias", "'logit_bias' values must be numbers between -100 and 100");
      s.logit_bias.emplace_back(static_cast<int32_t>(id), it.value().get<float>());
    }
  }

  if (auto e = boolean(body, "stream", out.stream)) return e;
  if (body.contains("stream_options") && !body["stream_options"].is_null()) {
    if (!body["stream_options"].is_object()) return bad("stream_options", "'stream_options' must be an object");
    if (auto e = boolean(body["stream_options"], "include_usage", out.include_usage)) {
      e->param = "stream_options.include_usage";
      return e;
    }
  }

  if (chat) {
    bool logprobs = false;
    if (auto e = boolean(body, "logprobs", logprobs)) return e;
    int64_t top = 0;
    if (auto e = integer(body, "top_logprobs", 0, 20, top)) return e;
    if (body.contains("top_logprobs") && !body["top_logprobs"].is_null() && !logprobs)
      return bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    out.top_logprobs = logprobs ? static_cast<int>(top) : -1;
  } else {
    int64_t lp = -1;
    if (body.contains("logprobs") && !body["logprobs"].is_null()) {
      if (auto e = integer(body, "logprobs", 0, 5, lp)) return e;
    }
    out.top_logprobs = static_cast<int>(lp);
  }
  if (auto st = s.validate(n_vocab); !st.ok()) return bad("", st.message());
  return std::nullopt;
}

}  // namespace osprey::server
