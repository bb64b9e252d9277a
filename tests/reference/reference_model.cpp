#include "reference/reference_model.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

namespace reference {

namespace {

struct Reader {
  const std::vector<uint8_t>& b;
  size_t p = 0;
  bool ok = true;
  template <typename T>
  T get() {
    T v{};
    if (p + sizeof(T) > b.size()) {
      ok = false;
      return v;
    }
    std::memcpy(&v, b.data() + p, sizeof(T));
    p += sizeof(T);
    return v;
  }
  std::string str() {
    const uint64_t n = get<uint64_t>();
    if (!ok || p + n > b.size()) {
      ok = false;
      return {};
    }
    std::string s(reinterpret_cast<const char*>(b.data() + p), n);
    p += n;
    return s;
  }
};

// Reads one metadata value of type t; numbers and strings are kept, arrays skipped.
void read_value(Reader& r, uint32_t t, double* num, std::string* s) {
  switch (t) {
    case 0: *num = r.get<uint8_t>(); break;
    case 1: *num = r.get<int8_t>(); break;
    case 2: *num = r.get<uint16_t>(); break;
    case 3: *num = r.get<int16_t>(); break;
    case 4: *num = r.get<uint32_t>(); break;
    case 5: *num = r.get<int32_t>(); break;
    case 6: *num = r.get<float>(); break;
    case 7: *num = r.get<uint8_t>(); break;
    case 8: *s = r.str(); break;
    case 10: *num = static_cast<double>(r.get<uint64_t>()); break;
    case 11: *num = static_cast<double>(r.get<int64_t>()); break;
    case 12: *num = r.get<double>(); break;
    case 9: {
      const uint32_t et = r.get<uint32_t>();
      const uint64_t n = r.get<uint64_t>();
      double d;
      std::string x;
      for (uint64_t i = 0; i < n && r.ok; ++i) read_value(r, et, &d, &x);
      break;
    }
    default: r.ok = false;
  }
}

double half(const uint8_t* p) {
  const uint16_t h = static_cast<uint16_t>(p[0] | (p[1] << 8));
  const int sign = h >> 15, e = (h >> 10) & 31, m = h & 1023;
  double v;
  if (e == 0) v = std::ldexp(m, -24);
  else if (e == 31) v = m ? NAN : INFINITY;
  else v = std::ldexp(1024 + m, e - 25);
  return sign ? -v : v;
}

double bfloat(const uint8_t* p) {
  const uint32_t bits = static_cast<uint32_t>(p[0] | (p[1] << 8)) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Value i of a block of the given GGUF type; blk points at the block.
double block_value(uint32_t type, const uint8_t* blk, int i) {
  switch (type) {
    case 39: {  // mxfp4 (OCP MX): an E8M0 exponent, then E2M1 codes (sign, 2 exponent bits, 1 mantissa bit)
      const int code = i < 16 ? (blk[1 + i] & 15) : (blk[1 + i - 16] >> 4);
      static const double kE2M1[8] = {0, 0.5, 1, 1.5, 2, 3, 4, 6};
      return (code & 8 ? -1.0 : 1.0) * kE2M1[code & 7] * std::ldexp(1.0, blk[0] - 127);
    }
    case 2: {  // q4_0: d, 16 bytes of nibbles
      const int nib = i < 16 ? (blk[2 + i] & 15) : (blk[2 + i - 16] >> 4);
      return half(blk) * (nib - 8);
    }
    case 3: {  // q4_1: d, m, nibbles
      const int nib = i < 16 ? (blk[4 + i] & 15) : (blk[4 + i - 16] >> 4);
      return half(blk) * nib + half(blk + 2);
    }
    case 6: case 7: {  // q5_0 / q5_1: the fifth bit of element i is bit i of qh
      const int off = type == 6 ? 2 : 4;
      uint32_t qh;
      std::memcpy(&qh, blk + off, 4);
      const uint8_t* qs = blk + off + 4;
      const int nib = i < 16 ? (qs[i] & 15) : (qs[i - 16] >> 4);
      const int q = nib | static_cast<int>(((qh >> i) & 1) << 4);
      return type == 6 ? half(blk) * (q - 16) : half(blk) * q + half(blk + 2);
    }
    case 8:  // q8_0
      return half(blk) * static_cast<int8_t>(blk[2 + i]);
    case 12: case 13: {  // q4_k / q5_k
      const uint8_t* sc = blk + 4;
      const int sub = i / 32;
      int scale, min;
      if (sub < 4) {
        scale = sc[sub] & 63;
        min = sc[sub + 4] & 63;
      } else {
        scale = (sc[sub + 4] & 15) | ((sc[sub - 4] >> 6) << 4);
        min = (sc[sub + 4] >> 4) | ((sc[sub] >> 6) << 4);
      }
      const int chunk = i / 64, within = i % 64, l = within % 32, upper = within >= 32;
      const uint8_t* qs = blk + (type == 12 ? 16 : 48);
      int q = upper ? (qs[32 * chunk + l] >> 4) : (qs[32 * chunk + l] & 15);
      if (type == 13) q |= ((blk[16 + l] >> (2 * chunk + upper)) & 1) << 4;
      return half(blk) * scale * q - half(blk + 2) * min;
    }
    case 14: {  // q6_k: ql[128], qh[64], scales[16], d
      const int h = i / 128, r = i % 128, quarter = r / 32, l = r % 32;
      const uint8_t byte = blk[64 * h + l + (quarter & 1) * 32];
      const int nib = quarter < 2 ? (byte & 15) : (byte >> 4);
      const int hi = (blk[128 + 32 * h + l] >> (2 * quarter)) & 3;
      return half(blk + 208) * static_cast<int8_t>(blk[192 + i / 16]) * ((nib | (hi << 4)) - 32);
    }
  }
  return NAN;
}

int block_size(uint32_t type) {
  return type == 0 || type == 1 || type == 30 ? 1 : (type >= 10 && type != 39 ? 256 : 32);
}
int block_bytes(uint32_t type) {
  switch (type) {
    case 0: return 4;
    case 1: case 30: return 2;
    case 2: return 18;
    case 3: return 20;
    case 6: return 22;
    case 7: return 24;
    case 8: return 34;
    case 12: return 144;
    case 13: return 176;
    case 14: return 210;
    case 39: return 17;
  }
  return 0;
}

}  // namespace

std::string Model::read_gguf(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "cannot open " + path;
  bytes_.assign(std::istreambuf_iterator<char>(in), {});
  Reader r{bytes_};
  if (r.get<uint32_t>() != 0x46554747) return "bad magic";
  r.get<uint32_t>();
  const uint64_t n_tensors = r.get<uint64_t>(), n_kv = r.get<uint64_t>();
  for (uint64_t k = 0; k < n_kv && r.ok; ++k) {
    const std::string key = r.str();
    const uint32_t t = r.get<uint32_t>();
    double num = 0;
    std::string s;
    read_value(r, t, &num, &s);
    if (t == 8) strings_[key] = s;
    else if (t != 9) numbers_[key] = num;
  }
  for (uint64_t k = 0; k < n_tensors && r.ok; ++k) {
    const std::string name = r.str();
    Tensor t;
    t.dims.resize(r.get<uint32_t>());
    for (auto& d : t.dims) d = r.get<uint64_t>();
    t.type = r.get<uint32_t>();
    t.offset = r.get<uint64_t>();
    tensors_[name] = t;
  }
  if (!r.ok) return "truncated file";
  const uint64_t align = numbers_.count("general.alignment") ? static_cast<uint64_t>(numbers_["general.alignment"]) : 32;
  data_start_ = (r.p + align - 1) / align * align;
  for (const auto& [name, t] : tensors_)
    if (block_bytes(t.type) == 0) return "reference cannot read type " + std::to_string(t.type) + " of " + name;
  return "";
}

std::string Model::add_lora(const std::string& path, double scale) {
  Model ad;
  if (std::string e = ad.read_gguf(path); !e.empty()) return e;
  const double alpha = ad.numbers_.count("adapter.lora.alpha") ? ad.numbers_["adapter.lora.alpha"] : 0.0;
  for (const auto& [name, ta] : ad.tensors_) {
    const std::string suffix = ".lora_a";
    if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const std::string base = name.substr(0, name.size() - suffix.size());
    const std::string b_name = base + ".lora_b";
    if (!ad.has(b_name) || !has(base)) return "no lora_b or base matrix for " + name;
    // The merged matrix W + s * B A, in double: the engine applies the pair
    // beside W instead, so the two ways meet only if both are right.
    const uint64_t r = ta.dims[1];
    const double s = scale * (alpha != 0 ? alpha / static_cast<double>(r) : 1.0);
    std::vector<std::vector<double>> a(r), b(ad.tensors_.at(b_name).dims[1]);
    for (uint64_t k = 0; k < r; ++k) a[k] = ad.matrix_row(name, k);
    for (uint64_t i = 0; i < b.size(); ++i) b[i] = ad.matrix_row(b_name, i);
    auto& m = cache_[base];
    if (m.empty())
      for (uint64_t i = 0; i < tensors_.at(base).dims[1]; ++i) m.push_back(matrix_row(base, i));
    if (m.size() != b.size() || m[0].size() != a[0].size()) return "shape mismatch for " + base;
    for (size_t i = 0; i < m.size(); ++i)
      for (uint64_t k = 0; k < r; ++k) {
        const double bik = s * b[i][k];
        for (size_t j = 0; j < m[i].size(); ++j) m[i][j] += bik * a[k][j];
      }
  }
  return "";
}

std::string Model::load(const std::string& path, int n_ctx) {
  n_ctx_ = n_ctx;
  if (std::string e = read_gguf(path); !e.empty()) return e;

  arch_ = strings_["general.architecture"];
  auto num = [&](const std::string& k, double def) {
    auto it = numbers_.find(arch_ + "." + k);
    return it == numbers_.end() ? def : it->second;
  };
  n_embd_ = static_cast<int>(num("embedding_length", 0));
  n_layer_ = static_cast<int>(num("block_count", 0));
  n_head_ = static_cast<int>(num("attention.head_count", 0));
  n_kv_ = static_cast<int>(num("attention.head_count_kv", n_head_));
  head_dim_ = static_cast<int>(num("attention.key_length", n_embd_ / n_head_));
  rope_dim_ = static_cast<int>(num("rope.dimension_count", head_dim_));
  eps_ = num("attention.layer_norm_rms_epsilon", 1e-5);
  rope_base_ = num("rope.freq_base", 10000);
  const std::string scaling = strings_.count(arch_ + ".rope.scaling.type") ? strings_[arch_ + ".rope.scaling.type"] : "";
  rope_scale_ = scaling == "linear" || scaling == "yarn" ? num("rope.scaling.factor", 1) : 1;
  yarn_ = scaling == "yarn";
  attn_factor_ = num("rope.scaling.attn_factor", 1);
  n_ctx_orig_ = static_cast<int>(num("rope.scaling.original_context_length", 0));
  neox_ = arch_ != "llama" && arch_ != "mistral";
  // What each family's published definition adds (written from the model
  // papers and configs, not from osprey's code).
  const bool gemma = arch_ == "gemma2" || arch_ == "gemma3";
  gelu_ = gemma;
  embd_scale_ = gemma ? std::sqrt(static_cast<float>(n_embd_)) : 1.0;
  query_scale_ = 1.0 / std::sqrt(static_cast<double>(head_dim_));
  if ((arch_ == "gemma2" && n_layer_ == 46) || (arch_ == "gemma3" && n_layer_ == 62))
    query_scale_ = 1.0 / std::sqrt(static_cast<double>(n_embd_ / n_head_));
  attn_softcap_ = num("attn_logit_softcapping", arch_ == "gemma2" ? 50 : 0);
  final_softcap_ = num("final_logit_softcapping", arch_ == "gemma2" ? 30 : 0);
  const int swa = static_cast<int>(num("attention.sliding_window", arch_ == "gemma2" ? 4096 : 0));
  window_.assign(n_layer_, 0);
  layer_base_.assign(n_layer_, rope_base_);
  layer_scale_.assign(n_layer_, rope_scale_);
  for (int l = 0; l < n_layer_; ++l) {
    if (arch_ == "gemma2" && l % 2 == 0) window_[l] = swa;              // local, global, local, ...
    if (arch_ == "gemma3" && (l + 1) % 6 != 0) {                          // five local to one global
      window_[l] = swa;
      layer_base_[l] = 10000;
      layer_scale_[l] = 1;
    }
    if (arch_ == "phi3" && swa < num("context_length", 0)) window_[l] = swa;  // every layer
    if (arch_ == "gpt-oss" && l % 2 == 0) window_[l] = swa;                  // local, global, local, ...
  }
  n_vocab_ = static_cast<int>(tensors_["token_embd.weight"].dims[1]);
  keys_.assign(n_layer_, {});
  values_.assign(n_layer_, {});
  return "";
}

std::vector<double> Model::matrix_row(const std::string& name, uint64_t row) const {
  const Tensor& t = tensors_.at(name);
  const uint64_t cols = t.dims[0];
  const int bs = block_size(t.type), bb = block_bytes(t.type);
  const uint8_t* base = bytes_.data() + data_start_ + t.offset + row * (cols / bs) * bb;
  std::vector<double> out(cols);
  for (uint64_t c = 0; c < cols; ++c) {
    const uint8_t* blk = base + (c / bs) * bb;
    if (t.type == 0) {
      float f;
      std::memcpy(&f, base + 4 * c, 4);
      out[c] = f;
    } else if (t.type == 1) {
      out[c] = half(base + 2 * c);
    } else if (t.type == 30) {
      out[c] = bfloat(base + 2 * c);
    } else {
      out[c] = block_value(t.type, blk, static_cast<int>(c % bs));
    }
  }
  return out;
}

std::vector<double> Model::vec(const std::string& name) const { return matrix_row(name, 0); }

std::vector<double> Model::matvec(const std::string& name, const std::vector<double>& x) const {
  auto& m = cache_[name];
  const Tensor& t = tensors_.at(name);
  if (m.empty())
    for (uint64_t r = 0; r < t.dims[1]; ++r) m.push_back(matrix_row(name, r));
  std::vector<double> y(m.size(), 0.0);
  for (size_t r = 0; r < m.size(); ++r)
    for (size_t c = 0; c < x.size(); ++c) y[r] += m[r][c] * x[c];
  return y;
}

std::vector<double> Model::vec_all(const std::string& name) const {
  const Tensor& t = tensors_.at(name);
  std::vector<double> out;
  uint64_t rows = 1;
  for (size_t i = 1; i < t.dims.size(); ++i) rows *= t.dims[i];
  for (uint64_t r = 0; r < rows; ++r) {
    const auto row = matrix_row(name, r);
    out.insert(out.end(), row.begin(), row.end());
  }
  return out;
}

double Model::num_(const std::string& key) const {
  auto it = numbers_.find(arch_ + "." + key);
  return it == numbers_.end() ? 0 : it->second;
}

std::vector<double> Model::expert_matvec(const std::string& name, int e, const std::vector<double>& x) const {
  const Tensor& t = tensors_.at(name);
  const uint64_t rows = t.dims[1];
  std::vector<double> y(rows, 0.0);
  auto& m = cache_[name];
  if (m.empty())
    for (uint64_t r = 0; r < rows * t.dims[2]; ++r) m.push_back(matrix_row(name, r));
  for (uint64_t r = 0; r < rows; ++r)
    for (size_t c = 0; c < x.size(); ++c) y[r] += m[e * rows + r][c] * x[c];
  return y;
}

std::vector<double> Model::step(int token) {
  std::vector<double> x = matrix_row("token_embd.weight", token);
  for (double& e : x) e *= embd_scale_;
  auto norm = [&](const std::vector<double>& v, const std::string& w) {
    double ss = 0;
    for (double a : v) ss += a * a;
    const double s = 1.0 / std::sqrt(ss / v.size() + eps_);
    const std::vector<double> g = vec(w);
    std::vector<double> o(v.size());
    for (size_t i = 0; i < v.size(); ++i) o[i] = v[i] * s * g[i];
    return o;
  };
  std::vector<double> factors(rope_dim_ / 2, 1.0);
  if (has("rope_freqs.weight")) factors = vec("rope_freqs.weight");
  // LongRoPE: the long table past the original context, else the short one.
  if (has("rope_factors_long.weight"))
    factors = vec(n_ctx_orig_ > 0 && n_ctx_ > n_ctx_orig_ ? "rope_factors_long.weight" : "rope_factors_short.weight");
  // YaRN (as its paper defines it): frequencies that turn fewer than
  // beta_slow times over the original context are interpolated, those that
  // turn more than beta_fast times are kept, a linear ramp between; the
  // rotated values grow by 1 + 0.1 ln(factor).
  const double n_orig = num_("rope.scaling.original_context_length");
  auto yarn_pair = [&](double rotations) {
    return rope_dim_ * std::log(n_orig / (rotations * 2 * M_PI)) / (2 * std::log(rope_base_));
  };
  const double ramp_lo = yarn_ ? std::max(0.0, std::floor(yarn_pair(32))) : 0;
  const double ramp_hi = yarn_ ? std::min(rope_dim_ - 1.0, std::ceil(yarn_pair(1))) : 0;
  const double gain = attn_factor_ * (yarn_ ? 1 + 0.1 * std::log(rope_scale_) : 1.0);
  auto rotate = [&](std::vector<double>& v, int heads, int l) {
    for (int h = 0; h < heads; ++h)
      for (int i = 0; i < rope_dim_ / 2; ++i) {
        const double kept = pos_ * std::pow(layer_base_[l], -2.0 * i / rope_dim_) / factors[i];
        double angle = kept / layer_scale_[l];
        if (yarn_) {
          const double keep = 1 - std::clamp((i - ramp_lo) / std::max(0.001, ramp_hi - ramp_lo), 0.0, 1.0);
          angle = angle * (1 - keep) + kept * keep;
        }
        const int a = h * head_dim_ + (neox_ ? i : 2 * i);
        const int b = h * head_dim_ + (neox_ ? i + rope_dim_ / 2 : 2 * i + 1);
        const double x0 = v[a], x1 = v[b];
        v[a] = gain * (x0 * std::cos(angle) - x1 * std::sin(angle));
        v[b] = gain * (x0 * std::sin(angle) + x1 * std::cos(angle));
      }
  };
  // Each head of `v` normalised on its own, with one weight vector for all heads.
  auto head_norm = [&](std::vector<double>& v, const std::string& w) {
    if (!has(w)) return;
    if (tensors_.at(w).dims[0] == v.size()) {  // OLMoE: one norm over the whole row
      v = norm(v, w);
      return;
    }
    for (size_t h = 0; h < v.size() / head_dim_; ++h) {
      std::vector<double> one(v.begin() + h * head_dim_, v.begin() + (h + 1) * head_dim_);
      one = norm(one, w);
      std::copy(one.begin(), one.end(), v.begin() + h * head_dim_);
    }
  };
  // Rows [from, from + n) of y.
  auto slice = [](const std::vector<double>& y, size_t from, size_t n) {
    return std::vector<double>(y.begin() + from, y.begin() + from + n);
  };
  auto add_bias = [&](std::vector<double>& v, const std::string& name) {
    if (!has(name)) return;
    const auto b = vec(name);
    for (size_t i = 0; i < v.size(); ++i) v[i] += b[i];
  };

  for (int l = 0; l < n_layer_; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    const auto h = norm(x, p + "attn_norm.weight");
    const size_t qd = static_cast<size_t>(n_head_) * head_dim_, kd = static_cast<size_t>(n_kv_) * head_dim_;
    std::vector<double> q, k, v;
    if (has(p + "attn_qkv.weight")) {  // Phi-3: one matrix, rows Q then K then V
      const auto qkv = matvec(p + "attn_qkv.weight", h);
      q = slice(qkv, 0, qd), k = slice(qkv, qd, kd), v = slice(qkv, qd + kd, kd);
    } else {
      q = matvec(p + "attn_q.weight", h), k = matvec(p + "attn_k.weight", h), v = matvec(p + "attn_v.weight", h);
    }
    add_bias(q, p + "attn_q.bias");
    add_bias(k, p + "attn_k.bias");
    add_bias(v, p + "attn_v.bias");
    head_norm(q, p + "attn_q_norm.weight");
    head_norm(k, p + "attn_k_norm.weight");
    rotate(q, n_head_, l);
    rotate(k, n_kv_, l);
    keys_[l].push_back(k);
    values_[l].push_back(v);
    std::vector<double> att(n_head_ * head_dim_, 0.0);
    for (int hh = 0; hh < n_head_; ++hh) {
      const int kv = hh / (n_head_ / n_kv_);
      // A sliding window sees its last window_[l] positions, itself included.
      const int first = window_[l] > 0 ? std::max(0, pos_ + 1 - window_[l]) : 0;
      std::vector<double> s(pos_ + 1, 0.0);
      double mx = -1e300;
      for (int t = first; t <= pos_; ++t) {
        double d = 0;
        for (int i = 0; i < head_dim_; ++i) d += q[hh * head_dim_ + i] * keys_[l][t][kv * head_dim_ + i];
        s[t] = d * query_scale_;
        if (attn_softcap_ > 0) s[t] = attn_softcap_ * std::tanh(s[t] / attn_softcap_);
        mx = std::max(mx, s[t]);
      }
      // A sink (gpt-oss) is one more logit in the softmax, with no value.
      const bool sink = has(p + "attn_sinks.weight");
      const double sink_logit = sink ? vec(p + "attn_sinks.weight")[hh] : 0;
      if (sink) mx = std::max(mx, sink_logit);
      double sum = sink ? std::exp(sink_logit - mx) : 0;
      for (int t = first; t <= pos_; ++t) sum += (s[t] = std::exp(s[t] - mx));
      for (int t = first; t <= pos_; ++t)
        for (int i = 0; i < head_dim_; ++i) att[hh * head_dim_ + i] += s[t] / sum * values_[l][t][kv * head_dim_ + i];
    }
    auto o = matvec(p + "attn_output.weight", att);
    add_bias(o, p + "attn_output.bias");
    // Gemma's norm of the attention output (gpt-oss gives this name to its FFN's pre-norm).
    if (gelu_ && has(p + "post_attention_norm.weight")) o = norm(o, p + "post_attention_norm.weight");
    if (l != skip_attention_)
      for (int i = 0; i < n_embd_; ++i) x[i] += o[i];
    const auto h2 = norm(x, p + (arch_ == "gpt-oss" ? "post_attention_norm.weight" : "ffn_norm.weight"));
    if (arch_ == "gpt-oss") {
      // The router's logits (with its bias), the top k, a softmax over those
      // k; each expert's gate and up with their biases, the clamped swiglu,
      // down with its bias.
      auto r = matvec(p + "ffn_gate_inp.weight", h2);
      add_bias(r, p + "ffn_gate_inp.bias");
      const int k = static_cast<int>(num_("expert_used_count"));
      std::vector<int> order(r.size());
      for (size_t e = 0; e < r.size(); ++e) order[e] = static_cast<int>(e);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return r[a] > r[b]; });
      double mx = r[order[0]], total = 0;
      std::vector<double> weight(k);
      for (int j = 0; j < k; ++j) total += (weight[j] = std::exp(r[order[j]] - mx));
      const auto gb = vec_all(p + "ffn_gate_exps.bias"), ub = vec_all(p + "ffn_up_exps.bias");
      const auto db = vec_all(p + "ffn_down_exps.bias");
      const size_t F = gb.size() / r.size();
      std::vector<double> out(n_embd_, 0.0);
      for (int j = 0; j < k; ++j) {
        const int e = order[j];
        auto g = expert_matvec(p + "ffn_gate_exps.weight", e, h2);
        auto u = expert_matvec(p + "ffn_up_exps.weight", e, h2);
        for (size_t i = 0; i < F; ++i) {
          const double gi = std::min(g[i] + gb[e * F + i], 7.0);
          const double ui = std::clamp(u[i] + ub[e * F + i], -7.0, 7.0);
          g[i] = gi / (1 + std::exp(-1.702 * gi)) * (ui + 1);
        }
        const auto d = expert_matvec(p + "ffn_down_exps.weight", e, g);
        for (int i = 0; i < n_embd_; ++i) out[i] += weight[j] / total * (d[i] + db[e * n_embd_ + i]);
      }
      for (int i = 0; i < n_embd_; ++i) x[i] += out[i];
      continue;
    }
    if (has(p + "ffn_gate_inp.weight")) {
      // A mixture of experts: softmax over the router's logits, the top k
      // experts, their probabilities (rescaled to sum to one, except in
      // OLMoE) weighing each expert's SiLU-gated FFN.
      auto r = matvec(p + "ffn_gate_inp.weight", h2);
      const double mx = *std::max_element(r.begin(), r.end());
      double total = 0;
      for (double& z : r) total += (z = std::exp(z - mx));
      for (double& z : r) z /= total;
      const int k = static_cast<int>(num_("expert_used_count"));
      std::vector<int> order(r.size());
      for (size_t e = 0; e < r.size(); ++e) order[e] = static_cast<int>(e);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return r[a] > r[b]; });
      double chosen = 0;
      for (int j = 0; j < k; ++j) chosen += r[order[j]];
      const double scale = arch_ == "olmoe" ? 1.0 : 1.0 / chosen;
      std::vector<double> out(n_embd_, 0.0);
      for (int j = 0; j < k; ++j) {
        const int e = order[j];
        auto g = expert_matvec(p + "ffn_gate_exps.weight", e, h2);
        const auto u = expert_matvec(p + "ffn_up_exps.weight", e, h2);
        for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] / (1 + std::exp(-g[i])) * u[i];
        const auto d = expert_matvec(p + "ffn_down_exps.weight", e, g);
        for (int i = 0; i < n_embd_; ++i) out[i] += r[e] * scale * d[i];
      }
      for (int i = 0; i < n_embd_; ++i) x[i] += out[i];
      continue;
    }
    std::vector<double> g, u;
    if (has(p + "ffn_gate.weight")) {
      g = matvec(p + "ffn_gate.weight", h2), u = matvec(p + "ffn_up.weight", h2);
    } else {  // Phi-3: ffn_up holds the gate's rows, then the up rows
      const auto gu = matvec(p + "ffn_up.weight", h2);
      g = slice(gu, 0, gu.size() / 2), u = slice(gu, gu.size() / 2, gu.size() / 2);
    }
    for (size_t i = 0; i < g.size(); ++i) {
      const double a = gelu_ ? 0.5 * g[i] * (1 + std::tanh(std::sqrt(2 / M_PI) * (g[i] + 0.044715 * g[i] * g[i] * g[i])))
                             : g[i] / (1 + std::exp(-g[i]));
      g[i] = a * u[i];
    }
    auto d = matvec(p + "ffn_down.weight", g);
    if (has(p + "post_ffw_norm.weight")) d = norm(d, p + "post_ffw_norm.weight");
    for (int i = 0; i < n_embd_; ++i) x[i] += d[i];
  }
  ++pos_;
  const auto xn = norm(x, "output_norm.weight");
  last_hidden_ = xn;
  auto logits = matvec(has("output.weight") ? "output.weight" : "token_embd.weight", xn);
  if (final_softcap_ > 0)
    for (double& z : logits) z = final_softcap_ * std::tanh(z / final_softcap_);
  return logits;
}

std::vector<double> Model::embed(const std::vector<int>& tokens) {
  if (arch_ == "bert") return encode_bert(tokens);
  for (int t : tokens) step(t);
  return last_hidden_;
}

// BERT as the original paper and Hugging Face's BertModel define it.
std::vector<double> Model::encode_bert(const std::vector<int>& tokens) const {
  const int n = static_cast<int>(tokens.size()), E = n_embd_, H = n_head_, hd = E / H;
  const double eps = numbers_.count(arch_ + ".attention.layer_norm_epsilon") ? numbers_.at(arch_ + ".attention.layer_norm_epsilon") : 1e-12;
  auto layer_norm = [&](std::vector<double>& v, const std::string& name) {
    double mean = 0, var = 0;
    for (double a : v) mean += a;
    mean /= v.size();
    for (double a : v) var += (a - mean) * (a - mean);
    var /= v.size();
    const auto g = vec(name + ".weight"), b = vec(name + ".bias");
    for (size_t i = 0; i < v.size(); ++i) v[i] = (v[i] - mean) / std::sqrt(var + eps) * g[i] + b[i];
  };
  auto affine = [&](const std::string& w, const std::vector<double>& x) {
    auto y = matvec(w + ".weight", x);
    const auto b = vec(w + ".bias");
    for (size_t i = 0; i < y.size(); ++i) y[i] += b[i];
    return y;
  };
  std::vector<std::vector<double>> x(n);
  const auto types = matrix_row("token_types.weight", 0);
  for (int t = 0; t < n; ++t) {
    x[t] = matrix_row("token_embd.weight", tokens[t]);
    const auto pos = matrix_row("position_embd.weight", t);
    for (int i = 0; i < E; ++i) x[t][i] += pos[i] + types[i];
    layer_norm(x[t], "token_embd_norm");
  }
  for (int l = 0; l < n_layer_; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    std::vector<std::vector<double>> q(n), k(n), v(n);
    for (int t = 0; t < n; ++t) q[t] = affine(p + "attn_q", x[t]), k[t] = affine(p + "attn_k", x[t]), v[t] = affine(p + "attn_v", x[t]);
    for (int t = 0; t < n; ++t) {
      std::vector<double> att(E, 0.0);
      for (int h = 0; h < H; ++h) {
        std::vector<double> w(n);
        double max = -1e300, sum = 0;
        for (int s = 0; s < n; ++s) {  // every position, before and after
          double d = 0;
          for (int i = 0; i < hd; ++i) d += q[t][h * hd + i] * k[s][h * hd + i];
          w[s] = d / std::sqrt(static_cast<double>(hd));
          max = std::max(max, w[s]);
        }
        for (double& a : w) sum += (a = std::exp(a - max));
        for (int s = 0; s < n; ++s)
          for (int i = 0; i < hd; ++i) att[h * hd + i] += w[s] / sum * v[s][h * hd + i];
      }
      const auto o = affine(p + "attn_output", att);
      for (int i = 0; i < E; ++i) x[t][i] += o[i];
      layer_norm(x[t], p + "attn_output_norm");
      auto u = affine(p + "ffn_up", x[t]);
      for (double& a : u) a = 0.5 * a * (1.0 + std::erf(a / std::sqrt(2.0)));
      const auto d = affine(p + "ffn_down", u);
      for (int i = 0; i < E; ++i) x[t][i] += d[i];
      layer_norm(x[t], p + "layer_output_norm");
    }
  }
  const int pooling = numbers_.count(arch_ + ".pooling_type") ? static_cast<int>(numbers_.at(arch_ + ".pooling_type")) : 1;
  if (pooling == 4) {  // a reranker: dense + tanh on the first token, then the scores
    std::vector<double> h = x[0];
    if (has("cls.weight")) {
      h = matvec("cls.weight", h);
      if (has("cls.bias")) {
        const auto b = vec("cls.bias");
        for (size_t i = 0; i < h.size(); ++i) h[i] += b[i];
      }
      for (double& a : h) a = std::tanh(a);
    }
    auto score = matvec("cls.output.weight", h);
    if (has("cls.output.bias")) {
      const auto b = vec("cls.output.bias");
      for (size_t i = 0; i < score.size(); ++i) score[i] += b[i];
    }
    return score;
  }
  if (pooling == 2) return x[0];
  if (pooling == 3) return x[n - 1];
  std::vector<double> mean(E, 0.0);
  for (int t = 0; t < n; ++t)
    for (int i = 0; i < E; ++i) mean[i] += x[t][i] / n;
  return mean;
}

}  // namespace reference
