#include <cstdio>

#include "cli/commands.h"
#include "core/utf8.h"
#include "formats/gguf.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {

void register_tokenize(CLI::App& app) {
  struct Opts {
    std::string model, text;
    bool ids = false, no_bos = false, parse_special = false;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand("tokenize", "Split text into tokens with a model's tokenizer (vocabulary-only files work too)");
  cmd->add_option("-m,--model", opts->model, "GGUF file with tokenizer metadata")->required();
  cmd->add_option("text", opts->text, "Text to tokenize")->required();
  cmd->add_flag("--ids", opts->ids, "Print only the list of ids, as [1, 2, 3]");
  cmd->add_flag("--no-bos", opts->no_bos, "Do not add the BOS/EOS tokens the vocabulary asks for");
  cmd->add_flag("--parse-special", opts->parse_special, "Turn control-token text such as <|im_end|> into those tokens");
  cmd->callback([opts] {
    auto file = GgufFile::open(opts->model);
    if (!file.ok()) throw Failure{file.status().message()};
    auto tok = Tokenizer::from_gguf(*file);
    if (!tok.ok()) throw Failure{tok.status().message()};
    const std::vector<int32_t> ids = (*tok)->encode(opts->text, !opts->no_bos, opts->parse_special);
    if (opts->ids) {
      std::string line = "[";
      for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
      std::printf("%s]\n", line.c_str());
      return;
    }
    for (int32_t id : ids) {
      // The bytes the token stands for; a lone byte of a multi-byte character is shown in hex.
      const std::string piece = (*tok)->token_bytes(id, /*render_special=*/true);
      if (utf8::is_valid(piece)) {
        std::printf("%6d -> '%s'\n", id, piece.c_str());
      } else {
        std::string hex;
        for (unsigned char c : piece) hex += "\\x" + std::string(1, "0123456789abcdef"[c >> 4]) + "0123456789abcdef"[c & 15];
        std::printf("%6d -> '%s'\n", id, hex.c_str());
      }
    }
  });
}

}  // namespace osprey::cli
