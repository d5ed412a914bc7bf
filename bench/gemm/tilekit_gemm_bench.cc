// tilekit's GEMM rows: the shared cases (bench/gemm_cases.h) with weights packed
// once per copy, fp32 or bf16, fp32 or bf16 activations, on the path the CPU
// allows (recorded in each row's label).
#include "tilekit/tilekit.h"

#include "bench_main.h"
#include "gemm_cases.h"
#include "tilekit_gemm_instance.h"

int main(int argc, char** argv) {
  using tilekit_bench::MakeGemm;
  using tilekit_bench::TilekitGemm;
  benchmark::AddCustomContext("tilekit_path", tilekit::cpu::path_report());
  tilekit_bench::RegisterGemmCases("tilekit", "f32", MakeGemm<TilekitGemm<false, false>>);
  tilekit_bench::RegisterGemmCases("tilekit", "f32_bf16w", MakeGemm<TilekitGemm<true, false>>);
  tilekit_bench::RegisterGemmCases("tilekit", "bf16", MakeGemm<TilekitGemm<true, true>>);
  return tilekit_bench::BenchMain(argc, argv);
}
