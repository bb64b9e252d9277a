#include "convert/quantize_gguf.h"

#include <chrono>
#include <cmath>
#include <cstring>

#include "core/thread_pool.h"
#include "formats/file_type.h"
#include "quant/quant.h"

namespace osprey {

namespace {

bool is_float_type(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// Stacked experts are [n_in, rows, n_expert]; every other matrix is one expert.
int64_t n_experts_of(const GgufTensorInfo& t) { return t.dims.size() >= 3 ? t.dims[2] : 1; }

// The type a tensor ends up as, before checking that it can be made.
std::optional<DType> target_type(const GgufTensorInfo& t, const QuantizeOptions& o, TensorRole role) {
  role.name = t.name;
  role.n_dims = static_cast<int>(t.dims.size());
  role.row_len = t.dims.empty() ? 0 : t.dims[0];
  const bool tied_output = role.tied_output;
  std::optional<DType> to = choose_quant_type(o.recipe, role);
  if (!to) return std::nullopt;
  const bool output = t.name == "output.weight" || (tied_output && t.name == "token_embd.weight");
  if (output && o.output_type) return o.output_type;
  if (t.name == "token_embd.weight" && o.embedding_type) return o.embedding_type;
  return to;
}

}  // namespace

Expected<QuantizePlan> plan_quantize(const GgufFile& in, const QuantizeOptions& o) {
  const auto arch_or = in.get_string("general.architecture", "");
  if (!arch_or) return arch_or.status();
  const std::string& arch = *arch_or;
  const auto n_layer = in.get_int(arch + ".block_count", 1);
  if (!n_layer) return n_layer.status();
  const auto n_expert = in.get_int(arch + ".expert_count", 0);
  if (!n_expert) return n_expert.status();
  // Per-layer head counts (arrays) are rare; they count as no sharing.
  const auto n_head = in.get_int(arch + ".attention.head_count", 1);
  const auto n_head_kv = in.get_int(arch + ".attention.head_count_kv", n_head ? *n_head : 1);
  TensorRole model;
  model.n_layer = *n_layer;
  model.n_expert = *n_expert;
  model.n_gqa = n_head && n_head_kv && *n_head_kv > 0 ? std::max<int64_t>(1, *n_head / *n_head_kv) : 1;
  model.tied_output = in.find_tensor("output.weight") == nullptr;

  QuantizePlan plan;
  for (const GgufTensorInfo& t : in.tensors()) {
    DType to = t.type;
    // MXFP4 is the format gpt-oss's experts were trained in and ship as:
    // they stay as they are rather than being quantized a second time.
    if (const auto want = target_type(t, o, model); want && t.type != DType::kMXFP4) to = *want;
    if (to != t.type) {
      const int64_t row_len = t.dims.empty() ? 0 : t.dims[0];
      if (!dtype_row_bytes(to, static_cast<uint64_t>(row_len)))
        return InvalidArgument("tensor '" + t.name + "': rows of " + std::to_string(row_len) +
                               " values cannot be stored as " + dtype_name(to));
      const QuantOps* from_ops = quant_ops(t.type);
      const QuantOps* to_ops = quant_ops(to);
      if (from_ops == nullptr || from_ops->dequantize == nullptr)
        return InvalidArgument("tensor '" + t.name + "' is stored as " + dtype_name(t.type) +
                               ", which osprey cannot decode to quantize again");
      if (to_ops == nullptr || to_ops->quantize == nullptr)
        return InvalidArgument(std::string("osprey cannot write ") + dtype_name(to) + " (tensor '" + t.name + "')");
      if (!is_float_type(t.type) && !o.allow_requantize)
        return InvalidArgument("tensor '" + t.name + "' is already quantized (" + dtype_name(t.type) +
                               "); quantizing it again to " + dtype_name(to) +
                               " compounds both errors. Start from an F16/BF16/F32 file, or pass --allow-requantize");
    }
    const uint64_t out_bytes =
        to == t.type ? t.n_bytes : *dtype_row_bytes(to, static_cast<uint64_t>(t.dims[0])) * static_cast<uint64_t>(t.rows());
    bool weighted = false;
    if (o.imatrix != nullptr && to != t.type && o.imatrix->entries.count(t.name)) {
      OSPREY_TRY(o.imatrix->check_shape(t.name, t.dims[0], n_experts_of(t)));
      weighted = quant_ops(to)->quantize_weighted != nullptr;
      ++(weighted ? plan.weighted : plan.imatrix_unused);
    }
    plan.tensors.push_back({&t, to, out_bytes, weighted});
    plan.in_bytes += t.n_bytes;
    plan.out_bytes += out_bytes;
  }
  if (o.imatrix != nullptr && plan.weighted + plan.imatrix_unused == 0 && !o.imatrix->entries.empty())
    return InvalidArgument("the importance matrix has data for none of this model's tensors (it names '" +
                           o.imatrix->entries.begin()->first + "'); was it made from another model?");
  return plan;
}

Status write_quantized(const GgufFile& in, const QuantizePlan& plan, const QuantizeOptions& o, const std::string& out,
                       FunctionRef<void(const QuantizeProgress&)> progress) {
  GgufWriter w;
  for (const auto& [key, value] : in.metadata()) w.set(key, value);
  w.set_alignment(static_cast<uint32_t>(in.alignment()));
  w.set("general.file_type", GgufValue::u32(static_cast<uint32_t>(o.recipe.file_type)));
  w.set("general.quantization_version", GgufValue::u32(2));
  for (const TensorPlan& t : plan.tensors)
    if (Status s = w.declare_tensor(t.source->name, t.to, t.source->dims); !s.ok()) return s;

  ThreadPool pool(std::max(1, o.n_threads));
  const auto start = std::chrono::steady_clock::now();
  uint64_t bytes_done = 0;
  std::vector<std::vector<float>> scratch(static_cast<size_t>(pool.size()));
  return w.write(out, [&](size_t i, std::vector<uint8_t>& bytes) -> Status {
    const TensorPlan& t = plan.tensors[i];
    const GgufTensorInfo& src = *t.source;
    if (t.copy()) {
      bytes.assign(src.data, src.data + src.n_bytes);
    } else {
      bytes.resize(t.out_bytes);
      const QuantOps& from = *quant_ops(src.type);
      const QuantOps& to = *quant_ops(t.to);
      const int64_t n = src.dims[0], rows = src.rows();
      const uint64_t in_row = *dtype_row_bytes(src.type, static_cast<uint64_t>(n));
      const uint64_t out_row = t.out_bytes / static_cast<uint64_t>(rows);
      // The importance matrix's column weights, one set per expert.
      std::vector<std::vector<float>> weights;
      if (t.weighted)
        for (int64_t e = 0; e < n_experts_of(src); ++e) weights.push_back(o.imatrix->column_weights(src.name, n, e));
      const int64_t rows_per_expert = rows / n_experts_of(src);
      std::atomic<int64_t> bad_row{-1};
      // Rows are independent, so threads take runs of them; each row decodes
      // into the thread's own buffer and encodes straight into the output.
      pool.parallel_for(rows, std::max<int64_t>(1, 65536 / n), [&](int64_t r0, int64_t r1, int thread) {
        std::vector<float>& x = scratch[static_cast<size_t>(thread)];
        x.resize(static_cast<size_t>(n));
        for (int64_t r = r0; r < r1; ++r) {
          from.dequantize(src.data + static_cast<uint64_t>(r) * in_row, x.data(), n);
          for (float v : x)
            if (!std::isfinite(v)) {
              int64_t none = -1;
              bad_row.compare_exchange_strong(none, r);
              break;
            }
          uint8_t* row_out = bytes.data() + static_cast<uint64_t>(r) * out_row;
          const std::vector<float>* w = weights.empty() ? nullptr : &weights[static_cast<size_t>(r / rows_per_expert)];
          if (w != nullptr && !w->empty())
            to.quantize_weighted(x.data(), row_out, n, w->data());
          else
            to.quantize(x.data(), row_out, n);
        }
      });
      if (bad_row.load() >= 0)
        return InvalidArgument("tensor '" + src.name + "' row " + std::to_string(bad_row.load()) +
                               " holds a NaN or infinity; the input file is damaged");
    }
    bytes_done += t.out_bytes;
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    progress({i + 1, plan.tensors.size(), bytes_done, plan.out_bytes, seconds});
    return Status::Ok();
  });
}

}  // namespace osprey
