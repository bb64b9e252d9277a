#include "kernels/dispatch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "kernels/ops.h"
#include "quant/quant.h"

namespace osprey::kernels {

#if defined(__x86_64__)
namespace avx2 {
DotFn dot_for(DType type);  // nullptr where there is no AVX2 kernel
void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores, float* out);
void silu_mul(float* out, const float* gate, const float* up, int64_t n);  // elementwise_avx2.cpp
void gelu_mul(float* out, const float* gate, const float* up, int64_t n);
void swiglu_oai_mul(float* out, const float* gate, const float* up, int64_t n);
void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
bool row_kernel_for(DType type, RowKernel& out);  // false where there is no AVX2 tile kernel
bool packed_row_kernel_for(DType type, RowKernel& out);  // false where there is no repacked AVX2 kernel
bool interleaved_row_kernel_for(DType type, RowKernel& out);  // rows in groups of 8; false where there is none
}
namespace avx512 {
DotFn dot_for(DType type);  // dot_mxfp4_avx512.cpp; nullptr where there is no AVX-512 dot
bool mxfp4_row_kernel(RowKernel& out);  // dot_mxfp4_avx512.cpp: the dot and a prompt tile
void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores, float* out);
void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);  // attention_avx512.cpp
bool row_kernel_for(DType type, RowKernel& out);  // false where there is no AVX-512 kernel
bool interleaved_row_kernel_for(DType type, RowKernel& out);  // rows in groups of 16; false where there is none
}
#endif
#if defined(__aarch64__)
namespace neon {
DotFn dot_for(DType type);  // nullptr where there is no NEON kernel
void attend_one(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p, float* scores, float* out);
void attend_group(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                  const AttendParams& p, float* scores, float* const* out);
}
#endif

const CpuFeatures& cpu_features() {
  static const CpuFeatures f = [] {
    CpuFeatures c;
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    c.avx2 = __builtin_cpu_supports("avx2");
    c.fma = __builtin_cpu_supports("fma");
    c.avx512f = __builtin_cpu_supports("avx512f");
    c.avx512bw = __builtin_cpu_supports("avx512bw");
    c.avx512vl = __builtin_cpu_supports("avx512vl");
    c.avx512vnni = __builtin_cpu_supports("avx512vnni");
    c.avx512vbmi = __builtin_cpu_supports("avx512vbmi");
    c.avx512bf16 = __builtin_cpu_supports("avx512bf16");
    // F16C has no __builtin_cpu_supports name in GCC 12; every AVX2 CPU has it.
    c.f16c = c.avx2;
#endif
#if defined(__aarch64__) && defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP);
    c.neon = (hw & HWCAP_ASIMD) != 0;
    c.dotprod = (hw & HWCAP_ASIMDDP) != 0;
#endif
    return c;
  }();
  return f;
}

std::string cpu_feature_names() {
  const CpuFeatures& f = cpu_features();
  const std::pair<bool, const char*> all[] = {
      {f.avx2, "avx2"},           {f.fma, "fma"},
      {f.f16c, "f16c"},           {f.avx512f, "avx512f"},
      {f.avx512bw, "avx512bw"},   {f.avx512vl, "avx512vl"},
      {f.avx512vnni, "avx512vnni"}, {f.avx512vbmi, "avx512vbmi"},
      {f.avx512bf16, "avx512bf16"}, {f.neon, "neon"},
      {f.dotprod, "dotprod"}};
  std::string out;
  for (const auto& [has, name] : all) {
    if (!has) continue;
    if (!out.empty()) out += ' ';
    out += name;
  }
  return out.empty() ? "none of the SIMD features osprey uses" : out;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
    case Isa::kAvx512: return "avx512";
    case Isa::kNeon: return "neon";
  }
  return "?";
}

std::vector<Isa> compiled_isas() {
#if defined(__x86_64__)
  return {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};
#elif defined(__aarch64__)
  return {Isa::kScalar, Isa::kNeon};
#else
  return {Isa::kScalar};
#endif
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out = {Isa::kScalar};
#if defined(__x86_64__)
  const CpuFeatures& f = cpu_features();
  if (f.avx2 && f.fma && f.f16c) out.push_back(Isa::kAvx2);
  if (f.avx2 && f.fma && f.f16c && f.avx512f && f.avx512bw && f.avx512vl && f.avx512vnni && f.avx512vbmi)
    out.push_back(Isa::kAvx512);
#elif defined(__aarch64__)
  const CpuFeatures& f = cpu_features();
  if (f.neon && f.dotprod) out.push_back(Isa::kNeon);
#endif
  return out;
}

DotFn dot_kernel(DType type, Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::kAvx512)
    if (DotFn fn = avx512::dot_for(type)) return fn;
  if (isa == Isa::kAvx2 || isa == Isa::kAvx512)
    if (DotFn fn = avx2::dot_for(type)) return fn;
#elif defined(__aarch64__)
  if (isa == Isa::kNeon)
    if (DotFn fn = neon::dot_for(type)) return fn;
#endif
  const QuantOps* ops = quant_ops(type);
  return ops ? ops->dot : nullptr;
}

Isa active_isa() {
  static const Isa isa = [] {
    const std::vector<Isa> avail = available_isas();
    if (const char* want = std::getenv("OSPREY_ISA")) {
      for (Isa i : avail)
        if (std::strcmp(want, isa_name(i)) == 0) return i;
    }
    return avail.back();
  }();
  return isa;
}

GatedFn gated_kernel(Activation act, Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::kAvx2 || isa == Isa::kAvx512)
    return act == Activation::kGelu ? avx2::gelu_mul : act == Activation::kSwigluOai ? avx2::swiglu_oai_mul : avx2::silu_mul;
#endif
  (void)isa;
  return act == Activation::kGelu ? gelu_mul : act == Activation::kSwigluOai ? swiglu_oai_mul : silu_mul;
}

AttendFn attend_kernel(Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::kAvx512) return avx512::attend_one;
  if (isa == Isa::kAvx2) return avx2::attend_one;
#elif defined(__aarch64__)
  if (isa == Isa::kNeon) return neon::attend_one;
#endif
  return attend_one;
}

AttendGroupFn attend_group_kernel(Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::kAvx512) return avx512::attend_group;
  if (isa == Isa::kAvx2) return avx2::attend_group;
#elif defined(__aarch64__)
  if (isa == Isa::kNeon) return neon::attend_group;
#endif
  return attend_group;
}

RowKernel row_kernel(DType type, Isa isa) {
  RowKernel k;
#if defined(__x86_64__)
  if (isa == Isa::kAvx512 && type == DType::kMXFP4 && avx512::mxfp4_row_kernel(k)) return k;
  if (isa == Isa::kAvx512 && avx512::row_kernel_for(type, k)) return k;
  if ((isa == Isa::kAvx2 || isa == Isa::kAvx512) && avx2::row_kernel_for(type, k)) return k;
#endif
  const QuantOps* ops = quant_ops(type);
  k.act_ops = ops ? quant_ops(ops->dot_type) : nullptr;
  k.dot = dot_kernel(type, isa);
  return k;
}

RowKernel packed_row_kernel(DType type, Isa isa, int64_t n_rows) {
#if defined(__x86_64__)
  RowKernel k;
  if (isa == Isa::kAvx512 && n_rows > 0 && avx512::interleaved_row_kernel_for(type, k) && n_rows % k.row_group == 0)
    return k;
  if ((isa == Isa::kAvx2 || isa == Isa::kAvx512) && n_rows > 0 && avx2::interleaved_row_kernel_for(type, k) &&
      n_rows % k.row_group == 0)
    return k;
  if (isa == Isa::kAvx2 && avx2::packed_row_kernel_for(type, k)) return k;
#endif
  return row_kernel(type, isa);
}

int64_t RowKernel::encoded_bytes(int64_t n) const { return dot_rows ? act_bytes(n) : quant_row_bytes(*act_ops, n); }

void RowKernel::encode_row(const float* x, void* act, int64_t n) const {
  if (dot_rows) encode(x, act, n);
  else act_ops->quantize(x, act, n);
}

void RowKernel::dots(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const void* act, int64_t n,
                     float* out) const {
  if (dot_rows) {
    dot_rows(w, row_bytes, n_rows, act, n, out);
    return;
  }
  for (int64_t r = 0; r < n_rows; ++r) out[r] = dot(w + r * row_bytes, act, n);
}

void RowKernel::tile(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride,
                     int n_tok, int64_t n, float* out, int64_t out_stride) const {
  // Tiles of up to tile_tokens tokens; a lone token (or a kernel with no
  // tile) takes the decode path.
  const int step = dot_tile ? tile_tokens : 1;
  for (int t = 0; t < n_tok; t += step) {
    const int nt = std::min(step, n_tok - t);
    if (nt > 1) dot_tile(w, row_bytes, n_rows, act + t * act_stride, act_stride, nt, n, out + t * out_stride, out_stride);
    else dots(w, row_bytes, n_rows, act + t * act_stride, n, out + t * out_stride);
  }
}

}  // namespace osprey::kernels
