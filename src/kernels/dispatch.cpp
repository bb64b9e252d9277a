#include "kernels/dispatch.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#if defined(__aarch64__) && defined(__linux__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif

#include "kernels/kernel_table.h"
#include "kernels/ops.h"
#include "kernels/ref/ref.h"
#include "quant/quant.h"
#if defined(__x86_64__)
#include "kernels/x86/avx2/avx2.h"
#include "kernels/x86/avx512/avx512.h"
#endif
#if defined(__aarch64__)
#include "kernels/arm/neon/neon.h"
#endif
#if defined(__wasm_simd128__)
#include "kernels/wasm/wasm.h"
#endif

namespace osprey::kernels {

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
    case Isa::kWasmSimd128: return "simd128";
  }
  return "?";
}

std::vector<Isa> compiled_isas() {
#if defined(__x86_64__)
  return {Isa::kScalar, Isa::kAvx2, Isa::kAvx512};
#elif defined(__aarch64__)
  return {Isa::kScalar, Isa::kNeon};
#elif defined(__wasm_simd128__)
  return {Isa::kScalar, Isa::kWasmSimd128};
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
#elif defined(__wasm_simd128__)
  out.push_back(Isa::kWasmSimd128);  // a module built with it only loads where it runs
#endif
  return out;
}

namespace {

// The levels a kernel lookup at `isa` may use, best first; each level's
// table answers what it can and passes the rest down, ending at ref/.
// Built once, here and nowhere else.
const std::vector<const KernelTable*>& chain(Isa isa) {
  static const auto chains = [] {
    std::vector<std::vector<const KernelTable*>> c(5);
    c[static_cast<size_t>(Isa::kScalar)] = {&ref::table()};
#if defined(__x86_64__)
    c[static_cast<size_t>(Isa::kAvx2)] = {&avx2::table(), &ref::table()};
    c[static_cast<size_t>(Isa::kAvx512)] = {&avx512::table(), &avx2::table(), &ref::table()};
#elif defined(__aarch64__)
    c[static_cast<size_t>(Isa::kNeon)] = {&neon::table(), &ref::table()};
#elif defined(__wasm_simd128__)
    c[static_cast<size_t>(Isa::kWasmSimd128)] = {&wasm::table(), &ref::table()};
#endif
    return c;
  }();
  const auto& levels = chains[static_cast<size_t>(isa)];
  // A level this build has no kernels for uses the reference.
  return levels.empty() ? chains[static_cast<size_t>(Isa::kScalar)] : levels;
}

// The first level's answer to `ask` (a member that is null at a level, or
// a lookup that finds nothing there, passes the question down).
template <class Ask>
bool first_level(Isa isa, Ask ask) {
  for (const KernelTable* level : chain(isa))
    if (ask(*level)) return true;
  return false;
}

}  // namespace

DotFn dot_kernel(DType type, Isa isa) {
  DotFn fn = nullptr;
  first_level(isa, [&](const KernelTable& t) { return t.dot_for && (fn = t.dot_for(type)) != nullptr; });
  return fn;
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
  GatedFn fn = nullptr;
  first_level(isa, [&](const KernelTable& t) { return t.gated_for && (fn = t.gated_for(act)) != nullptr; });
  return fn;
}

UnaryFn gelu_erf_kernel(Isa isa) {
  UnaryFn fn = nullptr;
  first_level(isa, [&](const KernelTable& t) { return (fn = t.gelu_erf) != nullptr; });
  return fn;
}

F16RowFn f16_row_kernel(Isa isa) {
  F16RowFn fn = nullptr;
  first_level(isa, [&](const KernelTable& t) { return (fn = t.f16_row) != nullptr; });
  return fn;
}

LowRankFn low_rank_kernel(Isa isa) {
  LowRankFn fn = nullptr;
  first_level(isa, [&](const KernelTable& t) { return (fn = t.low_rank) != nullptr; });
  return fn;
}

AttendFn attend_kernel(Isa isa) {
  AttendFn fn = nullptr;
  first_level(isa, [&](const KernelTable& t) { return (fn = t.attend_one) != nullptr; });
  return fn;
}

AttendGroupFn attend_group_kernel(Isa isa) {
  AttendGroupFn fn = nullptr;
  first_level(isa, [&](const KernelTable& t) { return (fn = t.attend_group) != nullptr; });
  return fn;
}

AttendHeads attend_heads_kernel(Isa isa) {
  AttendHeads out;
  first_level(isa, [&](const KernelTable& t) {
    if (t.attend_heads == nullptr) return false;
    out = {t.attend_heads, t.attend_lanes};
    return true;
  });
  return out;
}

RowKernel row_kernel(DType type, Isa isa) {
  RowKernel k;
  if (first_level(isa, [&](const KernelTable& t) { return t.row_kernel_for && t.row_kernel_for(type, (k = {})); }))
    return k;
  // No level has a kernel of its own: the format's activation encoding and
  // the best dot product, one row at a time.
  k = {};
  const QuantOps* ops = quant_ops(type);
  k.act_ops = ops ? quant_ops(ops->dot_type) : nullptr;
  k.dot = dot_kernel(type, isa);
  return k;
}

RowKernel packed_row_kernel(DType type, Isa isa, int64_t n_rows) {
  RowKernel k;
  // Interleaved groups first, from whichever level has them for a group size
  // that divides the matrix; then, level by level, rows repacked one for one
  // before rows as the file has them.
  if (n_rows > 0 && first_level(isa, [&](const KernelTable& t) {
        return t.interleaved_row_kernel_for && t.interleaved_row_kernel_for(type, (k = {})) && n_rows % k.row_group == 0;
      }))
    return k;
  if (first_level(isa, [&](const KernelTable& t) {
        return (t.packed_row_kernel_for && t.packed_row_kernel_for(type, (k = {}))) ||
               (t.row_kernel_for && t.row_kernel_for(type, (k = {})));
      }))
    return k;
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
