// tilekit's GEMM as a benchmark instance (gemm_cases.h), shared by
// bench_tilekit_gemm and the interleaved tools. Include tilekit/tilekit.h first.
#ifndef TILEKIT_BENCH_TILEKIT_GEMM_INSTANCE_H_
#define TILEKIT_BENCH_TILEKIT_GEMM_INSTANCE_H_

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gemm_cases.h"
#include "quantized_weights.h"
#include "tilekit/tilekit.h"

namespace tilekit_bench {

inline void CheckStatus(tilekit::Status s) {
  if (s != tilekit::Status::kOk) throw std::runtime_error(tilekit::last_error());
}

// kWeights: how the weights are packed (fp32, bf16, or int8 / int4 with a
// scale per 32 K values: the group-32 quantization of gemm_cases.h);
// kBf16Activations: A converted to bf16 before timing (dtype bf16), else fp32
// A (dtypes f32, f32_bf16w, int8, int4).
template <tilekit::WeightType kWeights, bool kBf16Activations>
class TilekitGemm : public GemmInstance {
 public:
  TilekitGemm(const GemmCase& c, const GemmOperands& ops)
      : m_(c.shape.m), n_(c.shape.n), k_(c.shape.k), pool_(static_cast<size_t>(c.threads)),
        c_(AllocateBuffer(sizeof(float) * m_ * n_)) {
    if constexpr (kBf16Activations) {
      a_bf16_ = AllocateBuffer(sizeof(tilekit::bf16) * m_ * k_);
      CheckStatus(tilekit::convert_f32_to_bf16(ops.A(), a_bf16_.as<tilekit::bf16>(), m_ * k_));
    }
    a_ = ops.A();
    options_.executor = &pool_;
    tilekit::PackOptions pack;
    pack.group = kGroup;
    packed_.resize(c.copies);
    for (auto& p : packed_) CheckStatus(tilekit::pack_weights(tilekit::weights_kn(ops.B(), k_, n_), kWeights, &p, pack));
    if constexpr (tilekit::is_quantized(kWeights)) {
      b_seen_ = QuantizeColumns(ops.B(), k_, n_, kWeights == tilekit::WeightType::kInt8 ? 127 : 7, kGroup);
    }
  }
  void Run(size_t copy) override {
    const auto c = tilekit::matrix(c_.as<float>(), m_, n_);
    if constexpr (kBf16Activations) {
      CheckStatus(tilekit::gemm(tilekit::matrix(a_bf16_.as<const tilekit::bf16>(), m_, k_), packed_[copy], c, {},
                                options_));
    } else {
      CheckStatus(tilekit::gemm(tilekit::matrix(a_, m_, k_), packed_[copy], c, {}, options_));
    }
  }
  const float* C() const override { return c_.as<float>(); }
  const float* BSeen() const override { return b_seen_.empty() ? nullptr : b_seen_.data(); }
  std::string Detail() const override { return tilekit::cpu::path_report(); }

 private:
  static constexpr size_t kGroup = 32;
  size_t m_, n_, k_;
  const float* a_ = nullptr;
  tilekit::ThreadPool pool_;
  tilekit::GemmOptions options_;
  std::vector<tilekit::PackedWeights> packed_;
  std::vector<float> b_seen_;
  tilekit::AlignedBuffer a_bf16_, c_;
};

// The instance for a case's dtype: f32, f32_bf16w (fp32 A × bf16 weights), bf16
// (both bf16), int8 or int4 (fp32 A × quantized weights).
inline std::unique_ptr<GemmInstance> MakeTilekitGemm(const GemmCase& c, const GemmOperands& ops) {
  using tilekit::WeightType;
  if (c.dtype == "f32") return std::make_unique<TilekitGemm<WeightType::kF32, false>>(c, ops);
  if (c.dtype == "f32_bf16w") return std::make_unique<TilekitGemm<WeightType::kBf16, false>>(c, ops);
  if (c.dtype == "int8") return std::make_unique<TilekitGemm<WeightType::kInt8, false>>(c, ops);
  if (c.dtype == "int4") return std::make_unique<TilekitGemm<WeightType::kInt4, false>>(c, ops);
  return std::make_unique<TilekitGemm<WeightType::kBf16, true>>(c, ops);
}

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_TILEKIT_GEMM_INSTANCE_H_
