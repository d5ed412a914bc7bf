// The fused-epilogue case shared by bench_tilekit_epilogue and
// interleaved_epilogue, at 256×4096×4096 fp32:
//   bare     C = A·B
//   fused    C = gelu_erf(A·B + bias) + residual, in the GEMM's store
//   unfused  C = A·B, then bias, GELU and the residual add as three passes over C
//            (what an eager framework does: linear, gelu, add)
#ifndef TILEKIT_BENCH_EPILOGUE_CASE_H_
#define TILEKIT_BENCH_EPILOGUE_CASE_H_

#include <stdexcept>
#include <vector>

#include "gemm_cases.h"
#include "tilekit/tilekit.h"

namespace tilekit_bench {

struct EpilogueCase {
  static constexpr size_t kM = 256, kN = 4096, kK = 4096;
  enum class Variant { kBare, kFused, kUnfused };

  tilekit::AlignedBuffer a, c, bias, residual;
  tilekit::PackedWeights w;

  EpilogueCase() {
    a = AllocateBuffer(kM * kK * 4);
    c = AllocateBuffer(kM * kN * 4);
    bias = AllocateBuffer(kN * 4);
    residual = AllocateBuffer(kM * kN * 4);
    std::vector<float> b(kK * kN);
    for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<float>((i * 2654435761u) % 1000) / 1000.f - 0.5f;
    for (size_t i = 0; i < kM * kK; ++i) a.as<float>()[i] = static_cast<float>(i % 97) / 97.f - 0.5f;
    for (size_t i = 0; i < kN; ++i) bias.as<float>()[i] = static_cast<float>(i % 13) / 13.f;
    for (size_t i = 0; i < kM * kN; ++i) residual.as<float>()[i] = static_cast<float>(i % 31) / 31.f;
    Check(tilekit::pack_weights(tilekit::weights_kn(b.data(), kK, kN), tilekit::WeightType::kF32, &w));
  }

  // One call of the variant: a GEMM, plus three passes over C for kUnfused.
  void Run(Variant variant, const tilekit::GemmOptions& opt) {
    const auto am = tilekit::matrix(a.as<const float>(), kM, kK);
    const auto cm = tilekit::matrix(c.as<float>(), kM, kN);
    const float* b = bias.as<const float>();
    const float* res = residual.as<const float>();
    switch (variant) {
      case Variant::kBare:
        Check(tilekit::gemm(am, w, cm, {}, opt));
        break;
      case Variant::kFused:
        Check(tilekit::gemm(
            am, w, cm, tilekit::Epilogue().with_bias(b).with(tilekit::Activation::kGeluErf).with_residual(res, kN),
            opt));
        break;
      case Variant::kUnfused:
        Check(tilekit::gemm(am, w, cm, {}, opt));
        Check(tilekit::apply_epilogue(cm, tilekit::Epilogue().with_bias(b)));
        Check(tilekit::apply_epilogue(cm, tilekit::Epilogue().with(tilekit::Activation::kGeluErf)));
        Check(tilekit::apply_epilogue(cm, tilekit::Epilogue().with_residual(res, kN)));
        break;
    }
  }

 private:
  static void Check(tilekit::Status s) {
    if (s != tilekit::Status::kOk) throw std::runtime_error(tilekit::last_error());
  }
};

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_EPILOGUE_CASE_H_
