#include "cli/bench_restate.h"

#include "cli/commands.h"
#include "engine/generator.h"

namespace osprey::cli {

namespace {

struct Reply {
  std::vector<int32_t> tokens;
  double decode_ts = 0;  // tokens/s after the first (which comes from the prompt pass)
  int64_t drafted = 0, accepted = 0;
};

Reply greedy(Model& m, const Tokenizer& tok, const std::vector<int32_t>& prompt, int64_t n_gen,
             const SpeculationOptions& spec) {
  m.reset();
  if (spec.draft_model != nullptr) spec.draft_model->reset();
  ReplyOptions ro;
  ro.sampling.temperature = 0;
  ro.max_tokens = n_gen;
  ro.ignore_eos = true;  // the same length every time
  ro.speculation = spec;
  ModelRunner runner(m);
  auto r = generate(runner, tok, prompt, ro, [](int32_t, const std::string&) { return true; });
  if (!r.ok()) throw Failure{r.status().message()};
  Reply out;
  out.tokens = r->tokens;
  out.decode_ts = r->gen_seconds > 0 ? static_cast<double>(r->tokens.size() - 1) / r->gen_seconds : 0;
  out.drafted = r->n_drafted;
  out.accepted = r->n_accepted;
  return out;
}

}  // namespace

RestateResult bench_restate(Model& m, const Tokenizer& tok, const SpeculationOptions& spec, int64_t n_gen, int reps,
                            int64_t edit_every) {
  if (n_gen < 2) throw Failure{"--restate needs at least 2 tokens"};
  // A fixed seed text of ordinary tokens: its ids spread over the vocabulary.
  const std::string seed_text = "Here is the text again, word for word:";
  const std::vector<int32_t> seed = tok.encode(seed_text, true, false);
  const Reply source = greedy(m, tok, seed, n_gen, {});
  std::vector<int32_t> prompt = seed;
  std::vector<int32_t> copy = source.tokens;
  if (edit_every > 0)  // another token of the same text in its place
    for (size_t i = static_cast<size_t>(edit_every) - 1; i < copy.size(); i += static_cast<size_t>(edit_every))
      copy[i] = source.tokens[(i + copy.size() / 2) % copy.size()];
  prompt.insert(prompt.end(), copy.begin(), copy.end());
  const std::vector<int32_t> again = tok.encode(seed_text, false, false);
  prompt.insert(prompt.end(), again.begin(), again.end());
  if (static_cast<int64_t>(prompt.size()) + n_gen > m.n_ctx())
    throw Failure{"the restate test needs a context of " + std::to_string(prompt.size() + n_gen) + " tokens"};
  RestateResult out;
  out.n_prompt = static_cast<int64_t>(prompt.size());
  greedy(m, tok, prompt, n_gen, spec);  // warm-up
  for (int r = 0; r < reps; ++r) {
    const Reply plain = greedy(m, tok, prompt, n_gen, {});
    const Reply fast = greedy(m, tok, prompt, n_gen, spec);
    if (fast.tokens != plain.tokens)
      throw Failure{"speculative decoding changed the greedy reply (a bug: please report it with the model file)"};
    out.plain_ts.push_back(plain.decode_ts);
    out.spec_ts.push_back(fast.decode_ts);
    out.drafted += fast.drafted;
    out.accepted += fast.accepted;
  }
  return out;
}

}  // namespace osprey::cli
