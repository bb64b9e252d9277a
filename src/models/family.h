// A model family: what a GGUF `general.architecture` name means to osprey.
// Each family lives in one file under models/families/ and gives three
// things: the hyperparameters it decides itself (which layers use a sliding
// window, their rope bases, the gate activation, embedding and score scales),
// its tensor list, and its forward pass, which reads top to bottom in terms
// of the shared blocks (models/blocks.h). Every family today is the same
// pre-norm decoder over those blocks (decoder_forward): what differs is data
// (which weights are present, the per-layer config), so each file's header
// writes out its own pass and points at the shared one.
#pragma once

#include <string>
#include <vector>

#include "formats/gguf.h"
#include "kernels/ops.h"
#include "osprey/status.h"

namespace osprey {

struct ModelConfig;
struct ModelWeights;
class TensorList;
struct Pass;

struct Family {
  const char* arch;  // general.architecture, as llama.cpp's converter writes it
  kernels::RopeStyle rope_style;
  // Fills ModelConfig's family-decided fields (activation, scales, layers)
  // from the file; rejects values the family cannot run.
  Status (*configure)(const GgufFile& file, ModelConfig& c);
  // Lists every tensor, with its shape and where it binds in `w` (whose
  // layers are already sized). `list.has()` tells which optional layout the
  // file uses (fused or separate projections).
  void (*tensors)(const ModelConfig& c, ModelWeights& w, TensorList& list);
  // One forward pass over the rows the pass describes.
  void (*forward)(Pass& p);
};

// The family of `arch`, or null.
const Family* find_family(const std::string& arch);
const std::vector<const Family*>& all_families();

// The families, each defined in its own file.
extern const Family kLlamaFamily, kMistralFamily, kQwen2Family, kQwen3Family, kQwen3MoeFamily;
extern const Family kOlmoeFamily, kGptOssFamily;
extern const Family kGemma2Family, kGemma3Family;
extern const Family kPhi3Family;
extern const Family kBertFamily;

}  // namespace osprey
