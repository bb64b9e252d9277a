// The sampler's cost per token, apart from the model: one draw from a
// vocabulary of real sizes (Llama 2's 32000, Llama 3's 128256, Qwen's 151936)
// at the server's defaults (temperature 1, no top-k, no top-p or min-p), and
// with top-p 0.95 and min-p 0.05. The logits are normal with a spread of 3, a
// flatter distribution than most models give, so a draw walks far. And greedy
// decoding (temperature 0), plain and with a logit bias, which puts every
// token on the candidate list as any other sampling does.
// Usage: build/bench/osprey_sampler_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>

#include <random>
#include <tuple>
#include <string>
#include <vector>

#include "sampling/sampler.h"

namespace osprey {
namespace {

void BM_Sample(benchmark::State& state, float temperature, float top_p, float min_p, bool bias) {
  const int32_t n = static_cast<int32_t>(state.range(0));
  std::mt19937 rng(1);
  std::normal_distribution<float> spread(0.0f, 3.0f);
  std::vector<float> logits(n);
  for (auto& l : logits) l = spread(rng);
  SamplingParams p;
  p.temperature = temperature;
  if (bias) p.logit_bias = {{0, -1.0f}};
  p.top_k = 0;
  p.top_p = top_p;
  p.min_p = min_p;
  Sampler sampler(p, n);
  int64_t sum = 0;
  for (auto _ : state) {
    logits[sum % n] += 1e-3f;  // a new distribution each time, as from a model
    sum += sampler.sample(logits.data());
  }
  benchmark::DoNotOptimize(sum);
}

}  // namespace
}  // namespace osprey

int main(int argc, char** argv) {
  using osprey::BM_Sample;
  for (auto [name, temperature, top_p, min_p, bias] :
       {std::tuple{"sample/defaults", 1.0f, 1.0f, 0.0f, false}, std::tuple{"sample/top_p_0.95", 1.0f, 0.95f, 0.0f, false},
        std::tuple{"sample/min_p_0.05", 1.0f, 1.0f, 0.05f, false}, std::tuple{"sample/greedy", 0.0f, 1.0f, 0.0f, false},
        std::tuple{"sample/greedy_logit_bias", 0.0f, 1.0f, 0.0f, true}})
    benchmark::RegisterBenchmark(name, BM_Sample, temperature, top_p, min_p, bias)->Arg(32000)->Arg(128256)->Arg(151936)
        ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
