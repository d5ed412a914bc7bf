// tilekit's GEMM rows: the shared cases (bench/gemm_cases.h) with weights packed
// once per copy, fp32 or bf16, fp32 or bf16 activations, on the path the CPU
// allows (recorded in each row's label).
#include "tilekit/tilekit.h"  // first: tilekit runs Highway's foreach_target

#include <memory>
#include <stdexcept>
#include <vector>

#include "bench_main.h"
#include "gemm_cases.h"

namespace {

using tilekit_bench::GemmCase;
using tilekit_bench::GemmOperands;

void Check(tilekit::Status s) {
  if (s != tilekit::Status::kOk) throw std::runtime_error(tilekit::last_error());
}

// kBf16Weights: weights packed as bf16; kBf16Activations: A converted to bf16
// before timing (dtype bf16), else fp32 A (dtype f32 or f32_bf16w).
template <bool kBf16Weights, bool kBf16Activations>
class TilekitGemm : public tilekit_bench::GemmInstance {
 public:
  TilekitGemm(const GemmCase& c, const GemmOperands& ops)
      : m_(c.shape.m), n_(c.shape.n), k_(c.shape.k), pool_(static_cast<size_t>(c.threads)),
        c_(tilekit_bench::AllocateBuffer(sizeof(float) * m_ * n_)) {
    if constexpr (kBf16Activations) {
      a_bf16_ = tilekit_bench::AllocateBuffer(sizeof(tilekit::bf16) * m_ * k_);
      Check(tilekit::convert_f32_to_bf16(ops.A(), a_bf16_.as<tilekit::bf16>(), m_ * k_));
    }
    a_ = ops.A();
    options_.executor = &pool_;
    const auto type = kBf16Weights ? tilekit::WeightType::kBf16 : tilekit::WeightType::kF32;
    packed_.resize(c.copies);
    for (auto& p : packed_) Check(tilekit::pack_weights(tilekit::weights_kn(ops.B(), k_, n_), type, &p));
  }
  void Run(size_t copy) override {
    const auto c = tilekit::matrix(c_.as<float>(), m_, n_);
    if constexpr (kBf16Activations) {
      tilekit::gemm(tilekit::matrix(a_bf16_.as<const tilekit::bf16>(), m_, k_), packed_[copy], c, {}, options_);
    } else {
      tilekit::gemm(tilekit::matrix(a_, m_, k_), packed_[copy], c, {}, options_);
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

}  // namespace

int main(int argc, char** argv) {
  benchmark::AddCustomContext("tilekit_path", tilekit::cpu::path_report());
  tilekit_bench::RegisterGemmCases("tilekit", "f32", tilekit_bench::MakeGemm<TilekitGemm<false, false>>);
  tilekit_bench::RegisterGemmCases("tilekit", "f32_bf16w", tilekit_bench::MakeGemm<TilekitGemm<true, false>>);
  tilekit_bench::RegisterGemmCases("tilekit", "bf16", tilekit_bench::MakeGemm<TilekitGemm<true, true>>);
  return tilekit_bench::BenchMain(argc, argv);
}
