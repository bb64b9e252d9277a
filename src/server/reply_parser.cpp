#include "server/reply_parser.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>

#include <nlohmann/json.hpp>

namespace osprey::server {
namespace {

using json = nlohmann::ordered_json;

constexpr const char* kThinkOpen = "<think>";
constexpr const char* kThinkClose = "</think>";

std::string call_id() {
  static std::atomic<uint64_t> counter{0};
  static const uint64_t start = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
  std::mt19937_64 rng(start ^ (++counter * 0x9E3779B97F4A7C15ull));
  static const char kChars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id += kChars[rng() % (sizeof kChars - 1)];
  return id;
}

// The length of the longest suffix of `text` that is a proper prefix of `marker`.
size_t partial_suffix(const std::string& text, const std::string& marker) {
  for (size_t len = std::min(marker.size() - 1, text.size()); len > 0; --len)
    if (text.compare(text.size() - len, len, marker, 0, len) == 0) return len;
  return 0;
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

const char* open_marker(ToolFormat f) {
  switch (f) {
    case ToolFormat::kHermes: return "<tool_call>";
    case ToolFormat::kMistral: return "[TOOL_CALLS]";
    case ToolFormat::kLlama3: return "<|python_tag|>";
    case ToolFormat::kFunctionary: return ">>>";
    default: return nullptr;
  }
}

}  // namespace

ToolFormat tool_format_of(const std::string& src) {
  if (src.find("<tool_call>") != std::string::npos) return ToolFormat::kHermes;
  if (src.find("[TOOL_CALLS]") != std::string::npos) return ToolFormat::kMistral;
  if (src.find(">>>") != std::string::npos && src.find("all") != std::string::npos) return ToolFormat::kFunctionary;
  if (src.find("<|python_tag|>") != std::string::npos || src.find("\"parameters\"") != std::string::npos) return ToolFormat::kLlama3;
  return ToolFormat::kNone;
}

const char* tool_format_name(ToolFormat f) {
  switch (f) {
    case ToolFormat::kHermes: return "hermes";
    case ToolFormat::kMistral: return "mistral";
    case ToolFormat::kLlama3: return "llama3";
    case ToolFormat::kFunctionary: return "functionary";
    case ToolFormat::kForced: return "forced";
    default: return "none";
  }
}

ReplyFormat reasoning_format_of(const std::string& src, const std::string& prompt) {
  ReplyFormat f;
  f.reasoning = src.find(kThinkOpen) != std::string::npos || src.find(kThinkClose) != std::string::npos;
  if (f.reasoning) {
    const size_t open = prompt.rfind(kThinkOpen);
    f.starts_in_reasoning = open != std::string::npos && prompt.find(kThinkClose, open) == std::string::npos;
  }
  return f;
}

ReplyParser::ReplyParser(ReplyFormat format, std::vector<std::string> tools, bool parallel)
    : format_(format), tools_(std::move(tools)), parallel_(parallel) {
  mode_ = format_.starts_in_reasoning ? Mode::kReasoning : Mode::kContent;
  // The Llama 3 and forced formats may be a bare JSON object: all of it is
  // held until it is known to be a call or not.
  if (format_.tools == ToolFormat::kForced) mode_ = Mode::kHold;
}

void ReplyParser::emit_text(std::vector<ReplyDelta>& out, ReplyDelta::Kind kind, const std::string& text) {
  if (text.empty()) return;
  std::string t = text;
  if (kind == ReplyDelta::kContent && at_start_) {
    // The answer after a reasoning block or a call starts at its first non-space.
    const size_t b = t.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return;
    t = t.substr(b);
  }
  if (kind == ReplyDelta::kContent) at_start_ = false;
  if (!out.empty() && out.back().kind == kind) {
    out.back().text += t;
  } else {
    ReplyDelta d{kind, t, {}, 0};
    out.push_back(std::move(d));
  }
}

bool ReplyParser::add_call(std::vector<ReplyDelta>& out, const std::string& name, const std::string& arguments) {
  if (std::find(tools_.begin(), tools_.end(), name) == tools_.end()) return false;
  if (!parallel_ && n_calls_ > 0) return true;  // one call asked for: later ones are dropped
  ReplyDelta d{ReplyDelta::kToolCall, "", {call_id(), name, arguments}, n_calls_++};
  out.push_back(std::move(d));
  return true;
}

bool ReplyParser::emit_calls(std::vector<ReplyDelta>& out, const std::string& block) {
  // A call object: {"name": ..., "arguments"|"parameters": {...} or "..."}.
  auto one = [&](const json& c, std::vector<ReplyDelta>& into) {
    if (!c.is_object() || !c.contains("name") || !c["name"].is_string()) return false;
    const json* args = c.contains("arguments") ? &c["arguments"] : c.contains("parameters") ? &c["parameters"] : nullptr;
    std::string text = "{}";
    if (args != nullptr) text = args->is_string() ? args->get<std::string>() : args->dump();
    return add_call(into, c["name"].get<std::string>(), text);
  };
  std::vector<ReplyDelta> calls;
  const std::string body = trim(block);
  bool ok = false;
  if (format_.tools == ToolFormat::kFunctionary) {
    // ">>>name\n{args}" segments; "all" is text for the user.
    ok = true;
    size_t pos = 0;
    while (ok && pos < body.size()) {
      if (body.compare(pos, 3, ">>>") != 0) {
        ok = false;
        break;
      }
      const size_t nl = body.find('\n', pos);
      const size_t next = body.find(">>>", pos + 3);
      const std::string name = trim(body.substr(pos + 3, (nl == std::string::npos ? body.size() : nl) - pos - 3));
      const std::string payload = nl == std::string::npos || (next != std::string::npos && nl > next)
                                      ? "" : body.substr(nl + 1, (next == std::string::npos ? body.size() : next) - nl - 1);
      if (name == "all") {
        emit_text(calls, ReplyDelta::kContent, payload);
      } else {
        json args = json::parse(trim(payload), nullptr, false);
        ok = !args.is_discarded() && add_call(calls, name, args.dump());
      }
      pos = next == std::string::npos ? body.size() : next;
    }
  } else {
    // Several calls may follow one another (Llama 3 separates them with ';').
    json parsed = json::parse(body, nullptr, false);
    if (parsed.is_discarded() && format_.tools == ToolFormat::kLlama3 && body.find(';') != std::string::npos) {
      parsed = json::array();
      size_t start = 0;
      while (start <= body.size()) {
        const size_t end = body.find(';', start);
        json part = json::parse(trim(body.substr(start, end == std::string::npos ? std::string::npos : end - start)), nullptr, false);
        if (part.is_discarded()) {
          parsed = json::value_t::discarded;
          break;
        }
        parsed.push_back(part);
        if (end == std::string::npos) break;
        start = end + 1;
      }
    }
    if (!parsed.is_discarded()) {
      ok = true;
      if (parsed.is_array()) {
        for (const auto& c : parsed) ok &= one(c, calls);
        ok &= !parsed.empty();
      } else {
        ok = one(parsed, calls);
      }
    }
  }
  if (!ok) return false;
  for (auto& d : calls) {
    if (d.kind == ReplyDelta::kContent) emit_text(out, d.kind, d.text);
    else out.push_back(std::move(d));
  }
  return true;
}

std::vector<ReplyDelta> ReplyParser::push(const std::string& text) {
  buffer_ += text;
  std::vector<ReplyDelta> out;
  drain(out, false);
  return out;
}

std::vector<ReplyDelta> ReplyParser::finish() {
  std::vector<ReplyDelta> out;
  drain(out, true);
  return out;
}

void ReplyParser::drain(std::vector<ReplyDelta>& out, bool at_end) {
  const char* call_open = open_marker(format_.tools);
  for (;;) {
    if (mode_ == Mode::kReasoning) {
      const size_t close = buffer_.find(kThinkClose);
      if (close != std::string::npos) {
        emit_text(out, ReplyDelta::kReasoning, buffer_.substr(0, close));
        buffer_.erase(0, close + std::string(kThinkClose).size());
        mode_ = Mode::kContent;
        at_start_ = true;
        continue;
      }
      const size_t keep = at_end ? 0 : partial_suffix(buffer_, kThinkClose);
      emit_text(out, ReplyDelta::kReasoning, buffer_.substr(0, buffer_.size() - keep));
      buffer_.erase(0, buffer_.size() - keep);
      return;
    }
    if (mode_ == Mode::kHold) {
      // The whole reply is held: a bare call object (forced, or Llama 3).
      if (!at_end) return;
      if (!emit_calls(out, buffer_)) emit_text(out, ReplyDelta::kContent, buffer_);
      buffer_.clear();
      return;
    }
    if (mode_ == Mode::kCall) {
      // Hermes calls end with </tool_call>; the others run to the end.
      const size_t close = format_.tools == ToolFormat::kHermes ? buffer_.find("</tool_call>") : std::string::npos;
      if (close == std::string::npos && !at_end) return;
      const std::string block = buffer_.substr(0, close);
      const std::string marker = format_.tools == ToolFormat::kFunctionary ? ">>>" : "";
      if (!emit_calls(out, marker + block)) {
        // Not a call after all: the text goes to the content as written.
        const bool hermes_closed = close != std::string::npos;
        emit_text(out, ReplyDelta::kContent, std::string(format_.tools == ToolFormat::kFunctionary ? ">>>" : call_open) + block +
                                                 (hermes_closed ? "</tool_call>" : ""));
      }
      buffer_.erase(0, close == std::string::npos ? buffer_.size() : close + std::string("</tool_call>").size());
      mode_ = Mode::kContent;
      at_start_ = true;
      if (close == std::string::npos) return;
      continue;
    }
    // Content: look for the start of reasoning or of a call.
    if (at_start_ && format_.tools == ToolFormat::kLlama3) {
      const std::string head = trim(buffer_);
      if (!head.empty() && head[0] == '{') {
        mode_ = Mode::kHold;
        continue;
      }
    }
    size_t first = std::string::npos;
    std::string which;
    auto consider = [&](const char* marker) {
      if (marker == nullptr) return;
      const size_t at = buffer_.find(marker);
      if (at < first) first = at, which = marker;
    };
    if (format_.reasoning) consider(kThinkOpen);
    consider(call_open);
    if (first != std::string::npos) {
      emit_text(out, ReplyDelta::kContent, buffer_.substr(0, first));
      buffer_.erase(0, first + which.size());
      mode_ = which == kThinkOpen ? Mode::kReasoning : Mode::kCall;
      continue;
    }
    size_t keep = 0;
    if (!at_end) {
      if (format_.reasoning) keep = std::max(keep, partial_suffix(buffer_, kThinkOpen));
      if (call_open != nullptr) keep = std::max(keep, partial_suffix(buffer_, call_open));
      // Llama 3: a reply that so far is only whitespace may still open with '{'.
      if (at_start_ && format_.tools == ToolFormat::kLlama3 && trim(buffer_).empty()) keep = buffer_.size();
    }
    emit_text(out, ReplyDelta::kContent, buffer_.substr(0, buffer_.size() - keep));
    buffer_.erase(0, buffer_.size() - keep);
    return;
  }
}

}  // namespace osprey::server
