// The smallest program on osprey's public API: load a model, open a
// session, and stream a chat reply. It includes only osprey/osprey.h.
//   usage: osprey_example MODEL.gguf "your message" [MAX_TOKENS]
#include <cstdio>
#include <cstdlib>
#include <string>

#include "osprey/osprey.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL.gguf \"your message\" [MAX_TOKENS]\n", argv[0]);
    return 2;
  }
  auto model = osprey::LanguageModel::load(argv[1]);
  if (!model.ok()) {
    std::fprintf(stderr, "cannot load %s: %s\n", argv[1], model.status().message().c_str());
    return 1;
  }
  std::fprintf(stderr, "%s (%s), context %lld\n", (*model)->name().c_str(), (*model)->architecture().c_str(),
               static_cast<long long>((*model)->context_size()));
  auto session = (*model)->new_session();
  if (!session.ok()) {
    std::fprintf(stderr, "%s\n", session.status().message().c_str());
    return 1;
  }
  osprey::GenerationOptions options;
  options.max_tokens = argc > 3 ? std::atoll(argv[3]) : 64;
  options.sampling.temperature = 0;  // greedy: the same reply every run
  auto reply = (*session)->chat({{"user", argv[2]}}, options, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
    return true;
  });
  if (!reply.ok()) {
    std::fprintf(stderr, "\n%s\n", reply.status().message().c_str());
    return 1;
  }
  std::printf("\n");
  std::fprintf(stderr, "[%zu tokens, finish: %s]\n", reply->tokens.size(), osprey::finish_name(reply->finish));
  return 0;
}
