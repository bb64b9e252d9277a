#include "models/family.h"

namespace osprey {

const std::vector<const Family*>& all_families() {
  static const std::vector<const Family*> families = {
      &kLlamaFamily, &kMistralFamily, &kQwen2Family, &kQwen3Family, &kQwen3MoeFamily, &kOlmoeFamily, &kGptOssFamily,
      &kGemma2Family, &kGemma3Family, &kPhi3Family, &kBertFamily,
  };
  return families;
}

const Family* find_family(const std::string& arch) {
  for (const Family* f : all_families())
    if (arch == f->arch) return f;
  return nullptr;
}

}  // namespace osprey
