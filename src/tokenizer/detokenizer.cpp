#include "tokenizer/detokenizer.h"

#include "core/utf8.h"

namespace osprey {

namespace {
const char kReplacement[] = "\xEF\xBF\xBD";
}

std::string sanitize_utf8(const std::string& bytes, bool hold_incomplete, std::string& rest) {
  std::string out;
  rest.clear();
  const size_t complete = hold_incomplete ? utf8::complete_prefix_length(bytes) : bytes.size();
  for (size_t i = 0; i < complete;) {
    uint32_t cp;
    size_t n;
    if (utf8::decode(bytes, i, cp, n)) {
      out.append(bytes, i, n);
    } else {
      out += kReplacement;
    }
    i += n;
  }
  rest.assign(bytes, complete, std::string::npos);
  return out;
}

std::string StreamDetokenizer::push(int32_t id) {
  std::string piece = tok_.token_bytes(id, render_special_);
  if (piece.empty()) return {};
  const Vocab& v = tok_.vocab();
  if (at_start_ && v.kind == VocabKind::kSpm && v.add_space_prefix && piece[0] == ' ') piece.erase(0, 1);
  at_start_ = false;
  pending_ += piece;
  std::string rest;
  std::string out = sanitize_utf8(pending_, /*hold_incomplete=*/true, rest);
  pending_ = std::move(rest);
  return out;
}

std::string StreamDetokenizer::flush() {
  std::string rest;
  std::string out = sanitize_utf8(pending_, /*hold_incomplete=*/false, rest);
  pending_.clear();
  return out;
}

void StreamDetokenizer::push_context(const std::vector<int32_t>& ids) {
  for (int32_t id : ids)
    if (!tok_.token_bytes(id, render_special_).empty()) at_start_ = false;
}

void StreamDetokenizer::reset() {
  pending_.clear();
  at_start_ = true;
}

}  // namespace osprey
