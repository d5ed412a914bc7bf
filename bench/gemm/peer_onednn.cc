// oneDNN on the shared GEMM cases, the way an inference engine uses it: a
// matmul primitive created with format_tag::any for the weights, the weights
// reordered once into the layout it asked for (its blocked, prepacked format),
// outside the timed loop. f32, bf16 × bf16 → f32 (AMX brgemm where the CPU and
// OS allow it), and int8 (s8 × s8 → f32 with output scales: OnednnInt8Matmul). The implementation oneDNN picked goes into each row's label.
//
// Debian's libdnnl is built with the OpenMP CPU runtime, so the thread count is
// omp_set_num_threads, set before the primitive is created (its blocking
// depends on the thread count it sees then).
#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>

#include <string>
#include <vector>

#include "bench_main.h"
#include "gemm_cases.h"
#include "onednn_matmul.h"
#include "peer_check.h"

int main(int argc, char** argv) {
  const std::string so = tilekit_bench::RequirePeer("onednn", "dnnl_version", "dnnl");
  const dnnl_version_t* v = dnnl_version();
  const char* runtime = v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : v->cpu_runtime == DNNL_RUNTIME_TBB ? "TBB"
                        : v->cpu_runtime == DNNL_RUNTIME_THREADPOOL ? "threadpool" : "sequential/other";
  benchmark::AddCustomContext("peer", "onednn");
  benchmark::AddCustomContext("peer_config", "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) +
                                                 "." + std::to_string(v->patch) + " (" + v->hash + "), CPU runtime " +
                                                 runtime + ", weights prepacked (format_tag::any + one reorder)");
  benchmark::AddCustomContext("peer_object", so);
  tilekit_bench::RegisterGemmCases("onednn", "f32", tilekit_bench::MakeGemm<tilekit_bench::OnednnMatmul>);
  tilekit_bench::RegisterGemmCases("onednn", "bf16", tilekit_bench::MakeGemm<tilekit_bench::OnednnMatmul>);
  tilekit_bench::RegisterGemmCases("onednn", "int8", tilekit_bench::MakeGemm<tilekit_bench::OnednnInt8Matmul>);
  return tilekit_bench::BenchMain(argc, argv);
}
