// BLIS on the shared GEMM cases, through its native typed API (bli_sgemm, with
// explicit row and column strides): a BLIS-only symbol, so no other BLAS could
// serve it even if one were loaded.
//
// BLIS 0.9.0 chooses its sub-configuration by counting FMA units with a timing
// heuristic, which picks "haswell" on this VM; BLIS_ARCH_TYPE=skx (set by
// scripts/bench) selects the AVX-512 kernels. Querying the configuration before
// bli_init() aborts in 0.9.0 when BLIS_ARCH_TYPE is set, hence the explicit init.
//
// At M = 1 the row calls bli_sgemv, as a BLAS user would: bli_sgemm packs the
// whole weight matrix for one row and runs ~8x slower here. BLIS does not
// thread level-2 operations, so its M = 1 rows use one thread at any count.
#include <blis.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench_main.h"
#include "gemm_cases.h"
#include "peer_check.h"

namespace {

using tilekit_bench::GemmCase;
using tilekit_bench::GemmOperands;

class BlisSgemm : public tilekit_bench::GemmInstance {
 public:
  BlisSgemm(const GemmCase& c, const GemmOperands& ops)
      : m_(c.shape.m), n_(c.shape.n), k_(c.shape.k), a_(ops.A()),
        b_(tilekit_bench::ReplicateWeights(ops.B(), sizeof(float) * n_ * k_, c.copies)),
        c_(tilekit_bench::AllocateBuffer(sizeof(float) * m_ * n_)) {
    bli_thread_set_num_threads(c.threads);
  }
  void Run(size_t copy) override {
    float one = 1.0f, zero = 0.0f;
    // Row-major: row stride = leading dimension, column stride = 1.
    if (m_ == 1) {  // c = Bᵀ·a
      bli_sgemv(BLIS_TRANSPOSE, BLIS_NO_CONJUGATE, k_, n_, &one, b_[copy].as<float>(), n_, 1,
                const_cast<float*>(a_), 1, &zero, c_.as<float>(), 1);
    } else {
      bli_sgemm(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, m_, n_, k_, &one, const_cast<float*>(a_), k_, 1,
                b_[copy].as<float>(), n_, 1, &zero, c_.as<float>(), n_, 1);
    }
  }
  const float* C() const override { return c_.as<float>(); }
  std::string Detail() const override { return m_ == 1 ? "bli_sgemv (single-threaded in BLIS)" : "bli_sgemm"; }

 private:
  dim_t m_, n_, k_;
  const float* a_;
  std::vector<tilekit::AlignedBuffer> b_;
  tilekit::AlignedBuffer c_;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string so = tilekit_bench::RequirePeer("blis", "bli_sgemm", "blis");
  bli_init();
  const char* arch = bli_arch_string(bli_arch_query_id());
  const char* wanted = std::getenv("BLIS_ARCH_TYPE");
  if (wanted && *wanted && std::strcmp(wanted, arch) != 0) {
    std::fprintf(stderr, "bench_peer_blis: BLIS_ARCH_TYPE=%s but BLIS runs sub-configuration %s\n", wanted, arch);
    return 2;
  }
  const std::string threading = bli_info_get_enable_openmp() ? "openmp" : bli_info_get_enable_pthreads() ? "pthreads" : "none";
  benchmark::AddCustomContext("peer", "blis");
  benchmark::AddCustomContext("peer_config", std::string("BLIS ") + bli_info_get_version_str() + " sub-configuration " +
                                                 arch + ", threading " + threading);
  benchmark::AddCustomContext("peer_object", so);
  tilekit_bench::RegisterGemmCases("blis", "f32", tilekit_bench::MakeGemm<BlisSgemm>);
  return tilekit_bench::BenchMain(argc, argv);
}
