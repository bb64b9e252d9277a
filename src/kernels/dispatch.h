// Run-time choice of kernel variants. The CPU is probed once; hot code then
// calls through the chosen function pointers and never checks again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/ops.h"
#include "quant/quant.h"

namespace osprey::kernels {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512f = false, avx512bw = false, avx512vl = false, avx512vnni = false, avx512vbmi = false, avx512bf16 = false;
  bool avx_vnni = false;
  bool neon = false, dotprod = false;  // ARM: Advanced SIMD and its int8 dot product (ARMv8.2+)
};
const CpuFeatures& cpu_features();
// The features of cpu_features() this CPU has, by name ("avx2 fma ...").
std::string cpu_feature_names();

// sum_i w[i] * a[i]: w a weight row of some type, a the activations encoded in
// that type's dot_type (see quant.h).
using DotFn = float (*)(const void* w, const void* a, int64_t n);

enum class Isa {
  kScalar,
  kAvx2,    // AVX2 + FMA + F16C
  kAvx512,  // AVX-512 F/BW/VL + VNNI + VBMI (Zen 4, Ice Lake and later)
  kNeon,    // ARM NEON + dotprod (ARMv8.2 and later: Graviton 2+, Apple M, Cortex-A76+)
  kWasmSimd128,  // WebAssembly SIMD128 (the browser and Node build)
};
const char* isa_name(Isa isa);

// Instruction sets this build has kernels for and this CPU can run, best last.
std::vector<Isa> available_isas();
// Instruction sets this build compiled kernels for, whether or not the CPU runs them.
std::vector<Isa> compiled_isas();

// The dot kernel for `type` at a given level; falls back to the scalar
// reference where the level has no kernel for the type.
DotFn dot_kernel(DType type, Isa isa);

// A weight format's kernel at one level: how a row of activations is encoded
// for it, and the dot products of several weight rows with one encoded row.
// Kernels with their own activation layout set act_bytes/encode/dot_rows;
// the others encode with act_ops (the format's dot_type) and call `dot` per row.
struct RowKernel {
  int64_t (*act_bytes)(int64_t n) = nullptr;
  void (*encode)(const float* x, void* act, int64_t n) = nullptr;
  // out[r] = (row r of w, rows row_bytes apart) . act, for r in [0, n_rows)
  void (*dot_rows)(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const void* act, int64_t n, float* out) = nullptr;
  // Optional prefill tile: out[t * out_stride + r] for n_tok (<= tile_tokens)
  // token rows of activations, act_stride bytes apart, so each unpacked
  // weight serves several tokens.
  void (*dot_tile)(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride,
                   int n_tok, int64_t n, float* out, int64_t out_stride) = nullptr;
  const QuantOps* act_ops = nullptr;
  DotFn dot = nullptr;
  // Set when the kernel reads rows in a layout of its own rather than the
  // file's: turns row_group consecutive rows of n elements (row_group * the
  // file's row bytes) into it. The packed rows take the same bytes, so they
  // stand in for the file's one for one (kernels/repack.h). A kernel with
  // row_group > 1 interleaves rows: it is given row counts, and row offsets,
  // that are multiples of row_group.
  void (*repack)(const uint8_t* src, uint8_t* dst, int64_t n) = nullptr;
  // Its inverse for one row (embedding lookups): row `row` (< row_group) of
  // the packed group at `group`, back to the file's layout.
  void (*unpack)(const uint8_t* group, int64_t row, uint8_t* dst, int64_t n) = nullptr;
  int64_t row_group = 1;
  // The most token rows one dot_tile call takes.
  int tile_tokens = 4;

  int64_t encoded_bytes(int64_t n) const;
  void encode_row(const float* x, void* act, int64_t n) const;
  void dots(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const void* act, int64_t n, float* out) const;
  // n_rows rows against n_tok token rows; uses dot_tile when the kernel has one.
  void tile(const uint8_t* w, int64_t row_bytes, int64_t n_rows, const uint8_t* act, int64_t act_stride, int n_tok,
            int64_t n, float* out, int64_t out_stride) const;
};

// The kernel for `type` at a level (the best one that level has for it)
// over rows in the file's layout.
RowKernel row_kernel(DType type, Isa isa);
// The fastest kernel for `type` at a level for a matrix of n_rows rows,
// which may want the rows repacked first (see RowKernel::repack), in groups
// that divide n_rows; otherwise the same as row_kernel.
RowKernel packed_row_kernel(DType type, Isa isa, int64_t n_rows);

// Attention of one query head (see ops.h), at a level.
using AttendFn = void (*)(const float* q, const KvView& kv, KvSpan span, int head_dim, const AttendParams& p,
                          float* scores, float* out);
AttendFn attend_kernel(Isa isa);
using AttendGroupFn = void (*)(const float* const* q, int n_q, const KvSpan* spans, const KvView& kv, int head_dim,
                               const AttendParams& p, float* scores, float* const* out);
AttendGroupFn attend_group_kernel(Isa isa);
// Several KV heads per call (ops.h): the level's kernel and its queries per
// vector, or null (and lanes 0) where no level down from `isa` has one; a
// caller then takes the heads one at a time through attend_group.
using AttendHeadsFn = void (*)(const float* const* q, int n_q, int n_heads, const KvSpan* spans, const KvView& kv,
                               int head_dim, const AttendParams& p, float* scores, float* const* out);
struct AttendHeads {
  AttendHeadsFn fn = nullptr;
  int lanes = 0;
};
AttendHeads attend_heads_kernel(Isa isa);

// out[i] = act(gate[i]) * up[i] (silu_mul, gelu_mul in ops.h), at a level.
using GatedFn = void (*)(float* out, const float* gate, const float* up, int64_t n);
GatedFn gated_kernel(Activation act, Isa isa);

// x[i] = gelu_erf(x[i]) (ops.h: the exact GELU of BERT-style encoders), at a level.
using UnaryFn = void (*)(float* x, int64_t n);
UnaryFn gelu_erf_kernel(Isa isa);

// A row of floats rounded to IEEE half precision, to nearest even (the f16
// KV cache), at a level; every level gives the same bits for finite values.
using F16RowFn = void (*)(const float* x, uint16_t* out, int64_t n);
F16RowFn f16_row_kernel(Isa isa);

// One row's low-rank update (ops.h, low_rank_update: LoRA), at a level.
using LowRankFn = void (*)(float* y, const float* x, const float* a, const float* bt, int64_t r, int64_t n_in,
                           int64_t n_out, float s, float* mid);
LowRankFn low_rank_kernel(Isa isa);

// The level in use: the best available, unless OSPREY_ISA=scalar|avx2|avx512|neon|simd128 asks
// for another (tests and comparisons).
Isa active_isa();

}  // namespace osprey::kernels
