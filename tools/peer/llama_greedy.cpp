// Greedy token ids (and the margin between the two best logits at each step)
// from llama.cpp, for comparing osprey with it on the same file.
// Not part of the osprey build: scripts/compare_llamacpp.sh compiles it
// against a llama.cpp or ik_llama.cpp build you already have
// (-DPEER_OLD_API for ik_llama.cpp's older API).
//   usage: llama_greedy MODEL PROMPT N_TOKENS [THREADS]
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: %s MODEL PROMPT N_TOKENS [THREADS]\n", argv[0]);
    return 2;
  }
  const int n = std::atoi(argv[3]);
  const int threads = argc > 4 ? std::atoi(argv[4]) : 2;
  llama_backend_init();
  llama_log_set([](ggml_log_level, const char*, void*) {}, nullptr);
  llama_model* model = llama_model_load_from_file(argv[1], llama_model_default_params());
  if (model == nullptr) {
    std::fprintf(stderr, "llama.cpp could not load %s\n", argv[1]);
    return 1;
  }
  const llama_vocab* vocab = llama_model_get_vocab(model);
  llama_context_params cp = llama_context_default_params();
  cp.n_ctx = 2048;
  cp.n_threads = cp.n_threads_batch = threads;
  llama_context* ctx = llama_init_from_model(model, cp);
  const std::string prompt = argv[2];
  std::vector<llama_token> tokens(prompt.size() + 16);
#ifdef PEER_OLD_API  // tokenizes through the model
  const auto* tokenizer = model;
#else
  const auto* tokenizer = vocab;
#endif
  const int n_prompt = llama_tokenize(tokenizer, prompt.c_str(), static_cast<int>(prompt.size()), tokens.data(),
                                      static_cast<int>(tokens.size()), true, true);
  tokens.resize(n_prompt);
  const int n_vocab = llama_vocab_n_tokens(vocab);
#ifdef PEER_OLD_API  // ik_llama.cpp: explicit positions
  int pos = n_prompt;
  llama_batch batch = llama_batch_get_one(tokens.data(), n_prompt, 0, 0);
#else
  llama_batch batch = llama_batch_get_one(tokens.data(), n_prompt);
#endif
  std::vector<int> ids;
  std::vector<float> margins;
  llama_token next = 0;
  for (int i = 0; i < n; ++i) {
    if (llama_decode(ctx, batch) != 0) {
      std::fprintf(stderr, "llama_decode failed\n");
      return 1;
    }
    const float* logits = llama_get_logits_ith(ctx, -1);
    int best = 0;
    for (int j = 1; j < n_vocab; ++j)
      if (logits[j] > logits[best]) best = j;
    float second = -1e30f;
    for (int j = 0; j < n_vocab; ++j)
      if (j != best && logits[j] > second) second = logits[j];
    ids.push_back(best);
    margins.push_back(logits[best] - second);
    next = best;
#ifdef PEER_OLD_API
    batch = llama_batch_get_one(&next, 1, pos++, 0);
#else
    batch = llama_batch_get_one(&next, 1);
#endif
  }
  std::printf("prompt:");
  for (llama_token t : tokens) std::printf(" %d", t);
  std::printf("\nids:");
  for (int id : ids) std::printf(" %d", id);
  std::printf("\nmargins:");
  for (float m : margins) std::printf(" %.3f", m);
  std::printf("\n");
  llama_free(ctx);
#ifdef PEER_OLD_API
  llama_free_model(model);
#else
  llama_model_free(model);
#endif
  return 0;
}
