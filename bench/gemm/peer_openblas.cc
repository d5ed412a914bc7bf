// OpenBLAS on the shared GEMM cases: cblas_sgemm (f32) and, when the library
// was built with BUILD_BFLOAT16, cblas_sbgemm (bf16). Debian 12's 0.3.21 is
// built without it, so its bf16 rows are absent, not zero.
//
// At M = 1 the row calls cblas_sgemv, as a BLAS user would: 0.3.21's sgemm
// packs the whole weight matrix even for one row (GEMV forwarding came in
// 0.3.27) and runs ~7x slower than its sgemv here.
//
// OpenBLAS picks its kernels from a CPU model table at load time; on this
// Sapphire Rapids VM it guesses an older core. OPENBLAS_CORETYPE (set by
// scripts/bench) overrides that, and the core it ended up with is recorded and,
// when the variable is set, required to match.
#include <cblas.h>

#include <strings.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench_main.h"
#include "gemm_cases.h"
#include "peer_check.h"

namespace {

using tilekit_bench::GemmCase;
using tilekit_bench::GemmOperands;

class OpenblasSgemm : public tilekit_bench::GemmInstance {
 public:
  OpenblasSgemm(const GemmCase& c, const GemmOperands& ops)
      : m_(c.shape.m), n_(c.shape.n), k_(c.shape.k), a_(ops.A()),
        b_(tilekit_bench::ReplicateWeights(ops.B(), sizeof(float) * n_ * k_, c.copies)),
        c_(tilekit_bench::AllocateBuffer(sizeof(float) * m_ * n_)) {
    openblas_set_num_threads(c.threads);
  }
  void Run(size_t copy) override {
    if (m_ == 1) {  // c = Bᵀ·a: B is K×N row-major
      cblas_sgemv(CblasRowMajor, CblasTrans, k_, n_, 1.0f, b_[copy].as<float>(), n_, a_, 1, 0.0f, c_.as<float>(), 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m_, n_, k_, 1.0f, a_, k_, b_[copy].as<float>(), n_,
                  0.0f, c_.as<float>(), n_);
    }
  }
  const float* C() const override { return c_.as<float>(); }
  std::string Detail() const override { return m_ == 1 ? "cblas_sgemv" : "cblas_sgemm"; }

 private:
  blasint m_, n_, k_;
  const float* a_;
  std::vector<tilekit::AlignedBuffer> b_;
  tilekit::AlignedBuffer c_;
};

#if defined(TILEKIT_BENCH_OPENBLAS_HAS_SBGEMM)
class OpenblasSbgemm : public tilekit_bench::GemmInstance {
 public:
  OpenblasSbgemm(const GemmCase& c, const GemmOperands& ops)
      : m_(c.shape.m), n_(c.shape.n), k_(c.shape.k), a_(tilekit_bench::AllocateBuffer(size_t{2} * m_ * k_)),
        c_(tilekit_bench::AllocateBuffer(sizeof(float) * m_ * n_)) {
    openblas_set_num_threads(c.threads);
    tilekit_bench::RoundToBf16(ops.A(), a_.as<uint16_t>(), static_cast<size_t>(m_) * k_);
    tilekit::AlignedBuffer b = tilekit_bench::AllocateBuffer(size_t{2} * n_ * k_);
    tilekit_bench::RoundToBf16(ops.B(), b.as<uint16_t>(), static_cast<size_t>(n_) * k_);
    b_ = tilekit_bench::ReplicateWeights(b.data(), size_t{2} * n_ * k_, c.copies);
  }
  void Run(size_t copy) override {
    cblas_sbgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m_, n_, k_, 1.0f, a_.as<bfloat16>(), k_,
                 b_[copy].as<bfloat16>(), n_, 0.0f, c_.as<float>(), n_);
  }
  const float* C() const override { return c_.as<float>(); }

 private:
  blasint m_, n_, k_;
  tilekit::AlignedBuffer a_;
  std::vector<tilekit::AlignedBuffer> b_;
  tilekit::AlignedBuffer c_;
};
#endif

}  // namespace

int main(int argc, char** argv) {
  const std::string so = tilekit_bench::RequirePeer("openblas", "cblas_sgemm", "openblas");
  const std::string core = openblas_get_corename();
  const char* wanted = std::getenv("OPENBLAS_CORETYPE");
  if (wanted && *wanted && strcasecmp(wanted, core.c_str()) != 0) {
    std::fprintf(stderr, "bench_peer_openblas: OPENBLAS_CORETYPE=%s but OpenBLAS runs core %s\n", wanted,
                 core.c_str());
    return 2;
  }
  benchmark::AddCustomContext("peer", "openblas");
  benchmark::AddCustomContext("peer_config", std::string(openblas_get_config()) + " (core " + core + ")");
  benchmark::AddCustomContext("peer_object", so);
  tilekit_bench::RegisterGemmCases("openblas", "f32", tilekit_bench::MakeGemm<OpenblasSgemm>);
#if defined(TILEKIT_BENCH_OPENBLAS_HAS_SBGEMM)
  tilekit_bench::RegisterGemmCases("openblas", "bf16", tilekit_bench::MakeGemm<OpenblasSbgemm>);
#endif
  return tilekit_bench::BenchMain(argc, argv);
}
