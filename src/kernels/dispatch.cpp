#include "kernels/dispatch.h"

#include <cstdlib>
#include <cstring>

#include "quant/quant.h"

namespace osprey::kernels {

#if defined(__x86_64__)
namespace avx2 {
DotFn dot_for(DType type);  // nullptr where there is no AVX2 kernel
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
    // F16C has no __builtin_cpu_supports name in GCC 12; every AVX2 CPU has it.
    c.f16c = c.avx2;
#endif
    return c;
  }();
  return f;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar: return "scalar";
    case Isa::kAvx2: return "avx2";
  }
  return "?";
}

std::vector<Isa> compiled_isas() {
#if defined(__x86_64__)
  return {Isa::kScalar, Isa::kAvx2};
#else
  return {Isa::kScalar};
#endif
}

std::vector<Isa> available_isas() {
  std::vector<Isa> out = {Isa::kScalar};
#if defined(__x86_64__)
  const CpuFeatures& f = cpu_features();
  if (f.avx2 && f.fma && f.f16c) out.push_back(Isa::kAvx2);
#endif
  return out;
}

DotFn dot_kernel(DType type, Isa isa) {
#if defined(__x86_64__)
  if (isa == Isa::kAvx2)
    if (DotFn fn = avx2::dot_for(type)) return fn;
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

DotFn dot_kernel(DType type) { return dot_kernel(type, active_isa()); }

}  // namespace osprey::kernels
