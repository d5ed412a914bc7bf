// tilekit's GEMM as a benchmark instance (gemm_cases.h), shared by
// bench_tilekit_gemm and the interleaved tools. Include tilekit/tilekit.h first.
#ifndef TILEKIT_BENCH_TILEKIT_GEMM_INSTANCE_H_
#define TILEKIT_BENCH_TILEKIT_GEMM_INSTANCE_H_

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gemm_cases.h"
#include "tilekit/tilekit.h"

namespace tilekit_bench {

inline void CheckStatus(tilekit::Status s) {
  if (s != tilekit::Status::kOk) throw std::runtime_error(tilekit::last_error());
}

// kBf16Weights: weights packed as bf16; kBf16Activations: A converted to bf16
// before timing (dtype bf16), else fp32 A (dtype f32 or f32_bf16w).
template <bool kBf16Weights, bool kBf16Activations>
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
    const auto type = kBf16Weights ? tilekit::WeightType::kBf16 : tilekit::WeightType::kF32;
    packed_.resize(c.copies);
    for (auto& p : packed_) CheckStatus(tilekit::pack_weights(tilekit::weights_kn(ops.B(), k_, n_), type, &p));
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
  std::string Detail() const override { return tilekit::cpu::path_report(); }

 private:
  size_t m_, n_, k_;
  const float* a_ = nullptr;
  tilekit::ThreadPool pool_;
  tilekit::GemmOptions options_;
  std::vector<tilekit::PackedWeights> packed_;
  tilekit::AlignedBuffer a_bf16_, c_;
};

// The instance for a case's dtype: f32, f32_bf16w (fp32 A × bf16 weights) or
// bf16 (both bf16).
inline std::unique_ptr<GemmInstance> MakeTilekitGemm(const GemmCase& c, const GemmOperands& ops) {
  if (c.dtype == "f32") return std::make_unique<TilekitGemm<false, false>>(c, ops);
  if (c.dtype == "f32_bf16w") return std::make_unique<TilekitGemm<true, false>>(c, ops);
  return std::make_unique<TilekitGemm<true, true>>(c, ops);
}

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_TILEKIT_GEMM_INSTANCE_H_
