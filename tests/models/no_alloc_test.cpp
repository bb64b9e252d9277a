// After warm-up, a decode step allocates nothing: every buffer is sized at
// load. Global operator new is replaced in this test binary to count.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>

#include "models/model.h"
#include "test_util.h"

namespace {
std::atomic<long> g_allocations{0};
}

// GCC sees free() meet memory from operator new and warns; here operator new
// is malloc.
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif
void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return operator new(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }

namespace osprey {
namespace {

class NoAlloc : public ::testing::TestWithParam<const char*> {};

void expect_no_allocations(const std::string& path, ModelOptions mo);

TEST_P(NoAlloc, DecodeStepsAllocateNothing) {
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 128;
  expect_no_allocations(test::synth_model("tiny", GetParam()), mo);
}

// LoRA adapters gather their rows into buffers sized at load as well.
TEST(NoAllocLora, DecodeStepsWithAnAdapterAllocateNothing) {
  const std::string base = test::synth_model("tiny", "q8_0");
  const std::string adapter = test::temp_path("alloc_test", "adapter.gguf");
  const auto r = test::run_synth("--lora '" + base + "' -o '" + adapter + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ModelOptions mo;
  mo.n_threads = 2;
  mo.n_ctx = 128;
  mo.lora = {{adapter, 0.5f}};
  expect_no_allocations(base, mo);
}

void expect_no_allocations(const std::string& path, ModelOptions mo) {
  auto m = Model::load(path, mo);
  ASSERT_TRUE(m.ok()) << m.status().message();
  const std::vector<int32_t> prompt = {1, 20, 30, 40, 50};
  ASSERT_TRUE((*m)->eval(prompt.data(), 5).ok());
  int32_t next = 60;
  ASSERT_TRUE((*m)->eval(&next, 1).ok());  // warm-up
  const long before = g_allocations.load();
  for (int i = 0; i < 10; ++i) {
    auto logits = (*m)->eval(&next, 1);
    ASSERT_TRUE(logits.ok());
    next = static_cast<int32_t>(std::max_element(*logits, *logits + (*m)->config().n_vocab) - *logits);
  }
  EXPECT_EQ(g_allocations.load() - before, 0) << "heap allocations during 10 decode steps";
  // The counter itself works: a vector allocates.
  const long probe = g_allocations.load();
  std::vector<int> v(100);
  EXPECT_GT(g_allocations.load(), probe);
}

INSTANTIATE_TEST_SUITE_P(Types, NoAlloc, ::testing::Values("q4_0", "q8_0", "q4_k", "f16"));

}  // namespace
}  // namespace osprey
