// A GGUF file copied with one change (metadata set, tensors added or left
// out), so that each error path of a loader sees an otherwise valid file.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <string>

#include "formats/gguf.h"

namespace osprey::test {

inline GgufWriter edited_gguf(const std::string& path, const std::function<void(GgufWriter&, const GgufFile&)>& edit,
                              const std::function<bool(const GgufTensorInfo&)>& keep = nullptr) {
  auto f = GgufFile::open(path);
  EXPECT_TRUE(f.ok()) << path;
  GgufWriter w;
  if (!f.ok()) return w;
  for (const auto& [k, v] : f->metadata()) w.set(k, v);
  for (const auto& t : f->tensors())
    if (!keep || keep(t)) {
      EXPECT_TRUE(w.add_tensor(t.name, t.type, t.dims, {t.data, t.data + t.n_bytes}).ok());
    }
  edit(w, *f);
  return w;
}

}  // namespace osprey::test
