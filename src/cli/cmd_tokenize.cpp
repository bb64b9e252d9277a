#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli/commands.h"
#include "core/utf8.h"
#include "formats/gguf.h"
#include "formats/json_text.h"
#include "tokenizer/tokenizer.h"

namespace osprey::cli {

namespace {

// A GGUF file's tokenizer, or a Hugging Face tokenizer.json (or the folder holding it).
std::shared_ptr<Tokenizer> load_tokenizer(const std::string& path) {
  std::error_code ec;
  const bool json_path = std::filesystem::is_directory(path, ec) ||
                         (path.size() >= 5 && path.compare(path.size() - 5, 5, ".json") == 0);
  if (json_path) {
    auto tok = Tokenizer::from_tokenizer_json(path);
    if (!tok.ok()) throw Failure{tok.status().message()};
    return *tok;
  }
  auto file = GgufFile::open(path);
  if (!file.ok()) throw Failure{file.status().message()};
  auto tok = Tokenizer::from_gguf(*file);
  if (!tok.ok()) throw Failure{tok.status().message()};
  return *tok;
}

std::string id_list(const std::vector<int32_t>& ids) {
  std::string line = "[";
  for (size_t i = 0; i < ids.size(); ++i) line += (i ? ", " : "") + std::to_string(ids[i]);
  return line + "]";
}

}  // namespace

void register_tokenize(CLI::App& app) {
  struct Opts {
    std::string model, text, json_lines;
    bool ids = false, no_bos = false, parse_special = false;
  };
  auto opts = std::make_shared<Opts>();
  CLI::App* cmd = app.add_subcommand(
      "tokenize", "Split text into tokens with a model's tokenizer: a GGUF file (vocabulary-only files work too), a "
                  "Hugging Face tokenizer.json, or a model folder holding one");
  cmd->add_option("-m,--model", opts->model, "GGUF file, tokenizer.json, or a folder with tokenizer.json")->required();
  auto* text = cmd->add_option("text", opts->text, "Text to tokenize");
  auto* lines = cmd->add_option("--json-lines", opts->json_lines,
                                "Tokenize each line of this file on its own; each line is a JSON string (so any text "
                                "fits), and each output line the JSON array of its ids")
                    ->check(CLI::ExistingFile);
  text->excludes(lines);
  cmd->add_flag("--ids", opts->ids, "Print only the list of ids, as [1, 2, 3]");
  cmd->add_flag("--no-bos", opts->no_bos, "Do not add the BOS/EOS tokens the vocabulary asks for");
  cmd->add_flag("--parse-special", opts->parse_special, "Turn control-token text such as <|im_end|> into those tokens");
  cmd->callback([opts, text, lines] {
    if (text->count() == 0 && lines->count() == 0) throw Failure{"give the text to tokenize, or --json-lines FILE"};
    const std::shared_ptr<Tokenizer> tok = load_tokenizer(opts->model);
    if (!opts->json_lines.empty()) {
      std::ifstream in(opts->json_lines, std::ios::binary);
      std::string line;
      for (int64_t n = 1; std::getline(in, line); ++n) {
        const std::string where = opts->json_lines + ": line " + std::to_string(n);
        const auto j = parse_json_text(line, where, kMaxJsonFileDepth);
        if (!j.ok() || !j->is_string()) throw Failure{where + " is not a JSON string"};
        std::printf("%s\n", id_list(tok->encode(j->get<std::string>(), !opts->no_bos, opts->parse_special)).c_str());
      }
      return;
    }
    const std::vector<int32_t> ids = tok->encode(opts->text, !opts->no_bos, opts->parse_special);
    if (opts->ids) {
      std::printf("%s\n", id_list(ids).c_str());
      return;
    }
    for (int32_t id : ids) {
      // The bytes the token stands for; a lone byte of a multi-byte character is shown in hex.
      const std::string piece = tok->token_bytes(id, /*render_special=*/true);
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
