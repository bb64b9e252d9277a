// Full logit vectors from a peer engine (llama.cpp or ik_llama.cpp) for a
// given list of token ids: after the prompt, then after each of N_STEPS
// greedy tokens the peer picks itself. osprey's peer comparison test
// (tests/models/peer_logits_test.cpp) feeds the same ids and compares.
// Not part of the osprey build: scripts/compare_logits.sh compiles it
// against a peer build you already have. -DPEER_OLD_API for builds with
// the older API (ik_llama.cpp: llama_free_model, llama_batch_get_one with
// explicit positions).
//   usage: llama_logits MODEL N_STEPS THREADS ID [ID ...]
// Output: one line per step, "step S next ID logits V V V ...".
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s MODEL N_STEPS THREADS ID [ID ...]\n", argv[0]);
    return 2;
  }
  const int steps = std::atoi(argv[2]);
  const int threads = std::atoi(argv[3]);
  std::vector<llama_token> prompt;
  for (int i = 4; i < argc; ++i) prompt.push_back(std::atoi(argv[i]));
  llama_backend_init();
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_model* model = llama_model_load_from_file(argv[1], llama_model_default_params());
  if (model == nullptr) {
    std::fprintf(stderr, "the peer could not load %s\n", argv[1]);
    return 1;
  }
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 512;
  cp.n_batch = cp.n_ubatch = 512;
  cp.n_threads = cp.n_threads_batch = threads;
  llama_context* ctx = llama_init_from_model(model, cp);
  const int n_vocab = llama_vocab_n_tokens(llama_model_get_vocab(model));
  // The older API numbers positions explicitly.
  auto batch_of = [](llama_token* t, int n, int pos) {
#ifdef PEER_OLD_API
    return llama_batch_get_one(t, n, pos, 0);
#else
    (void)pos;
    return llama_batch_get_one(t, n);
#endif
  };
  int pos = static_cast<int>(prompt.size());
  llama_batch batch = batch_of(prompt.data(), pos, 0);
  llama_token next = 0;
  for (int s = 0; s <= steps; ++s) {
    if (llama_decode(ctx, batch) != 0) {
      std::fprintf(stderr, "llama_decode failed\n");
      return 1;
    }
    const float* logits = llama_get_logits_ith(ctx, -1);
    int best = 0;
    for (int j = 1; j < n_vocab; ++j)
      if (logits[j] > logits[best]) best = j;
    std::printf("step %d next %d logits", s, best);
    for (int j = 0; j < n_vocab; ++j) std::printf(" %.6g", logits[j]);
    std::printf("\n");
    next = best;
    batch = batch_of(&next, 1, pos++);
  }
  llama_free(ctx);
#ifdef PEER_OLD_API
  llama_free_model(model);
#else
  llama_model_free(model);
#endif
  return 0;
}
