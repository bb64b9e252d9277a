// The version of what `osprey synth` writes, apart from the rest of synth so
// that the tests' model cache can read it without linking the command line.
#pragma once

namespace osprey::cli {

// Changes whenever synth writes different bytes for the same options, so that
// caches of synthesized files (the tests keep one in the build tree) are
// rebuilt instead of silently going stale. 2: general.file_type is written.
// 3: family shapes (qwen3, gemma2/3, phi3) and --plain. 4: experts, SPM
// control tokens, tiny-gemma2 with 26 layers. 5: plain blocks scale with depth. 6: gentler Q/K norms in plain models. 7: gpt-oss. 8: a more decisive router. 9: MXFP4 rounding by midpoints. 10: WordPiece vocabularies name [CLS] as BOS too.
constexpr int kSynthFormatVersion = 10;

}  // namespace osprey::cli
