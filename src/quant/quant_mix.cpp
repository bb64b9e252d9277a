#include "quant/quant_mix.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace osprey {

namespace {

struct RecipeRow {
  const char* name;
  DType base;
  QuantMix mix;
  int64_t file_type;
};

// llama.cpp's names and general.file_type numbers, so files and habits carry
// over. As there, "Q3_K", "Q4_K" and "Q5_K" on their own mean the _M mixes.
const RecipeRow kRecipes[] = {
    {"F32", DType::kF32, QuantMix::kNone, 0},       {"F16", DType::kF16, QuantMix::kNone, 1},
    {"BF16", DType::kBF16, QuantMix::kNone, 32},    {"Q8_0", DType::kQ8_0, QuantMix::kNone, 7},
    {"Q4_0", DType::kQ4_0, QuantMix::kNone, 2},     {"Q4_1", DType::kQ4_1, QuantMix::kNone, 3},
    {"Q5_0", DType::kQ5_0, QuantMix::kNone, 8},     {"Q5_1", DType::kQ5_1, QuantMix::kNone, 9},
    {"Q2_K", DType::kQ2_K, QuantMix::kQ2_K, 10},    {"Q3_K_S", DType::kQ3_K, QuantMix::kQ3_K_S, 11},
    {"Q3_K_M", DType::kQ3_K, QuantMix::kQ3_K_M, 12}, {"Q3_K_L", DType::kQ3_K, QuantMix::kQ3_K_L, 13},
    {"Q4_K_S", DType::kQ4_K, QuantMix::kQ4_K_S, 14}, {"Q4_K_M", DType::kQ4_K, QuantMix::kQ4_K_M, 15},
    {"Q5_K_S", DType::kQ5_K, QuantMix::kQ5_K_S, 16}, {"Q5_K_M", DType::kQ5_K, QuantMix::kQ5_K_M, 17},
    {"Q6_K", DType::kQ6_K, QuantMix::kNone, 18},
};
const std::pair<const char*, const char*> kAliases[] = {{"Q3_K", "Q3_K_M"}, {"Q4_K", "Q4_K_M"}, {"Q5_K", "Q5_K_M"}};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool ends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// "blk.12.ffn_down.weight" -> 12 and "ffn_down.weight"; -1 for tensors outside the blocks.
int64_t layer_of(std::string_view name, std::string_view& rest) {
  rest = name;
  if (name.rfind("blk.", 0) != 0) return -1;
  const size_t dot = name.find('.', 4);
  if (dot == std::string_view::npos) return -1;
  int64_t layer = -1;
  const auto [end, ec] = std::from_chars(name.data() + 4, name.data() + dot, layer);
  if (ec != std::errc() || end != name.data() + dot) return -1;
  rest = name.substr(dot + 1);
  return layer;
}

// Layers that matter most get more bits: the first and last eighth, and a
// third of those between. (The same spread llama.cpp's mixes use, so a file
// of ours and one of theirs put their extra bits in the same layers.)
bool more_bits(int64_t layer, int64_t n_layer) {
  const int64_t eighth = n_layer / 8;
  return layer < eighth || layer >= 7 * n_layer / 8 || (layer - eighth) % 3 == 2;
}

bool fits(DType t, int64_t row_len) {
  const DTypeLayout* l = dtype_layout(t);
  return l != nullptr && row_len % l->block_len == 0;
}

// A type that divides the row: k-quants need rows of 256, the legacy block types 32.
std::optional<DType> fitting(DType t, int64_t row_len) {
  if (fits(t, row_len)) return t;
  DType next;
  switch (t) {
    case DType::kQ2_K:
    case DType::kQ3_K: next = DType::kQ4_0; break;
    case DType::kQ4_K: next = DType::kQ5_0; break;
    case DType::kQ5_K: next = DType::kQ5_1; break;
    case DType::kQ6_K: next = DType::kQ8_0; break;
    default: return std::nullopt;
  }
  return fits(next, row_len) ? std::optional<DType>(next) : std::nullopt;
}

// The tensors a quantizer may touch: matrices of weights that are not
// routers (a few kilobytes that decide which experts run) or position tables.
bool quantizable(std::string_view rest, int n_dims) {
  if (n_dims < 2 || !ends_with(rest, ".weight")) return false;
  for (std::string_view keep : {"ffn_gate_inp.", "_norm.", "rope_", "pos_embd", "token_types", "attn_sinks"})
    if (rest.find(keep) != std::string_view::npos) return false;
  return true;
}

bool is_high_precision(DType t) {
  return t == DType::kQ6_K || t == DType::kQ8_0 || t == DType::kF16 || t == DType::kBF16 || t == DType::kF32;
}

DType mixed_type(const QuantRecipe& r, const TensorRole& t, std::string_view rest, int64_t layer) {
  const DType base = r.base;
  if (r.pure) return base;
  const bool output = rest == "output.weight" || (t.tied_output && rest == "token_embd.weight");
  // The output head turns every hidden state into the logits: the one matrix
  // all recipes below 6 bits keep at Q6_K.
  if (output) return is_high_precision(base) ? base : DType::kQ6_K;
  if (r.mix == QuantMix::kNone) return base;
  const int64_t n = std::max<int64_t>(1, t.n_layer);
  const bool in_layer = layer >= 0;
  const bool attn_v = in_layer && rest == "attn_v.weight";
  const bool attn_qkv = in_layer && rest == "attn_qkv.weight";
  const bool attn_out = in_layer && rest == "attn_output.weight";
  const bool ffn_down = in_layer && (rest == "ffn_down.weight" || rest == "ffn_down_exps.weight");
  // In a mixture of 8 or more experts attention is a few percent of the
  // weights, so V at 8 bits costs little and helps every token.
  if (attn_v && t.n_expert >= 8) return DType::kQ8_0;
  // With 4 or more query heads per KV head, V is that many times smaller
  // than Q: a step up in its type costs little and helps every head that
  // reads it. Where a mix names V's type outright, that stands.
  const bool shared_v = attn_v && t.n_gqa >= 4;
  const DType v_step = base == DType::kQ3_K ? DType::kQ4_K : base == DType::kQ4_K ? DType::kQ5_K : DType::kQ6_K;
  switch (r.mix) {
    case QuantMix::kQ2_K:
      if (attn_v) return t.n_gqa >= 4 ? DType::kQ4_K : DType::kQ3_K;
      if (ffn_down || attn_out || attn_qkv) return DType::kQ3_K;
      return base;
    case QuantMix::kQ3_K_S:
      return shared_v ? v_step : base;
    case QuantMix::kQ3_K_M:
      if (attn_v) return layer < 2 ? DType::kQ5_K : DType::kQ4_K;
      if (ffn_down) return layer < n / 16 ? DType::kQ5_K : DType::kQ4_K;
      if (attn_out || attn_qkv) return DType::kQ4_K;
      return base;
    case QuantMix::kQ3_K_L:
      if (attn_v || ffn_down || attn_out || attn_qkv) return DType::kQ5_K;
      return base;
    case QuantMix::kQ4_K_S:
      if (attn_v && layer < 4) return DType::kQ5_K;
      if (ffn_down && layer < n / 8) return DType::kQ5_K;
      return shared_v ? v_step : base;
    case QuantMix::kQ4_K_M:
    case QuantMix::kQ5_K_M:
      if ((attn_v || ffn_down) && more_bits(layer, n)) return DType::kQ6_K;
      if (attn_qkv) return r.mix == QuantMix::kQ4_K_M ? DType::kQ5_K : DType::kQ6_K;
      return shared_v ? v_step : base;
    case QuantMix::kQ5_K_S:
      return shared_v ? v_step : base;
    case QuantMix::kNone: break;
  }
  return base;
}

}  // namespace

Expected<QuantRecipe> parse_quant_recipe(std::string_view name) {
  std::string want = upper(name);
  for (const auto& [alias, target] : kAliases)
    if (want == alias) want = target;
  for (const RecipeRow& row : kRecipes)
    if (want == row.name) return QuantRecipe{row.name, row.base, row.mix, row.file_type};
  return InvalidArgument("unknown quantization type '" + std::string(name) + "'; choose one of " + quant_recipe_names());
}

std::string quant_recipe_names() {
  std::string out;
  for (const RecipeRow& row : kRecipes) {
    if (!out.empty()) out += ", ";
    out += row.name;
  }
  return out + " (Q3_K, Q4_K and Q5_K mean the _M mixes)";
}

std::optional<DType> choose_quant_type(const QuantRecipe& recipe, const TensorRole& t) {
  std::string_view rest;
  const int64_t layer = layer_of(t.name, rest);
  if (!quantizable(rest, t.n_dims)) return std::nullopt;
  return fitting(mixed_type(recipe, t, rest, layer), t.row_len);
}

}  // namespace osprey
