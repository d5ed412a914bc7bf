// tilekit's GEMM rows: the shared cases (bench/gemm_cases.h) with weights packed
// once per copy, fp32, bf16, int8 or int4, fp32 or bf16 activations, on the
// path the CPU allows (recorded in each row's label).
#include "tilekit/tilekit.h"

#include "bench_main.h"
#include "gemm_cases.h"
#include "tilekit_gemm_instance.h"

int main(int argc, char** argv) {
  using tilekit_bench::MakeGemm;
  using tilekit_bench::TilekitGemm;
  benchmark::AddCustomContext("tilekit_path", tilekit::cpu::path_report());
  using tilekit::WeightType;
  tilekit_bench::RegisterGemmCases("tilekit", "f32", MakeGemm<TilekitGemm<WeightType::kF32, false>>);
  tilekit_bench::RegisterGemmCases("tilekit", "f32_bf16w", MakeGemm<TilekitGemm<WeightType::kBf16, false>>);
  tilekit_bench::RegisterGemmCases("tilekit", "bf16", MakeGemm<TilekitGemm<WeightType::kBf16, true>>);
  tilekit_bench::RegisterGemmCases("tilekit", "int8", MakeGemm<TilekitGemm<WeightType::kInt8, false>>);
  tilekit_bench::RegisterGemmCases("tilekit", "int4", MakeGemm<TilekitGemm<WeightType::kInt4, false>>);
  return tilekit_bench::BenchMain(argc, argv);
}
