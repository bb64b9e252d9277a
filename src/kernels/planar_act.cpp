#include "kernels/planar_act.h"

#include <algorithm>

#include "core/fp16.h"
#include "quant/blocks.h"
#include "quant/quant.h"
#include "quant/quant_util.h"

namespace osprey::kernels {

using namespace osprey::quant;

int64_t planar_q8_bytes(int64_t n) { return n + n / kQK * 8; }

void encode_planar_q8(const float* x, void* act, int64_t n) {
  auto* q = static_cast<int8_t*>(act);
  auto* d = reinterpret_cast<float*>(q + n);
  auto* sum = reinterpret_cast<int32_t*>(d + n / kQK);
  for (int64_t b = 0; b < n / kQK; ++b) {
    d[b] = fp16_to_fp32(fp32_to_fp16(quantize_block_q8(x + b * kQK, q + b * kQK, kQK)));
    int32_t s = 0;
    for (int j = 0; j < kQK; ++j) s += q[b * kQK + j];
    sum[b] = s;
  }
}

void pair_act_halves(int8_t* q, int64_t n) {
  int8_t pair[2 * kQK];
  for (int64_t b = 0; b + 2 <= n / kQK; b += 2) {
    int8_t* p = q + b * kQK;
    std::copy(p, p + 16, pair);            // b0 0..15
    std::copy(p + 32, p + 48, pair + 16);  // b1 0..15
    std::copy(p + 16, p + 32, pair + 32);  // b0 16..31
    std::copy(p + 48, p + 64, pair + 48);  // b1 16..31
    std::copy(pair, pair + 2 * kQK, p);
  }
}

void encode_planar_q8_paired(const float* x, void* act, int64_t n) {
  encode_planar_q8(x, act, n);
  pair_act_halves(static_cast<int8_t*>(act), n);
}

int64_t planar_q8k_bytes(int64_t n) { return n + n / kQK_K * 4 + n / 32 * 4 + n / 16 * 2; }

void encode_planar_q8k(const float* x, void* act, int64_t n) {
  auto* q = static_cast<int8_t*>(act);
  auto* d = reinterpret_cast<float*>(q + n);
  auto* sum32 = reinterpret_cast<int32_t*>(d + n / kQK_K);
  auto* sum16 = reinterpret_cast<int16_t*>(sum32 + n / 32);
  const QuantOps* q8k = quant_ops(DType::kQ8_K);
  BlockQ8_K b;
  for (int64_t i = 0; i < n / kQK_K; ++i) {
    q8k->quantize(x + i * kQK_K, &b, kQK_K);
    std::copy(b.qs, b.qs + kQK_K, q + i * kQK_K);
    d[i] = b.d;
    for (int g = 0; g < kQK_K / 32; ++g) sum32[i * 8 + g] = b.bsums[2 * g] + b.bsums[2 * g + 1];
    std::copy(b.bsums, b.bsums + kQK_K / 16, sum16 + i * 16);
  }
}

}  // namespace osprey::kernels
