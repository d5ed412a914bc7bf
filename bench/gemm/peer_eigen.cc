// Eigen on the shared GEMM cases: its own templated GEMM, compiled here with
// -O3 -march=native (AVX-512 packets on this machine), threaded with OpenMP.
// Pure Eigen: it must not forward to a BLAS, which would make this row a
// second OpenBLAS row under another name.
#if defined(EIGEN_USE_BLAS) || defined(EIGEN_USE_MKL_ALL) || defined(EIGEN_USE_MKL)
#error "bench_peer_eigen measures Eigen's own GEMM: build it without EIGEN_USE_BLAS / EIGEN_USE_MKL*"
#endif

#include <Eigen/Core>

#include <string>
#include <vector>

#include "bench_main.h"
#include "gemm_cases.h"
#include "peer_check.h"

namespace {

using tilekit_bench::GemmCase;
using tilekit_bench::GemmOperands;
using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

class EigenGemm : public tilekit_bench::GemmInstance {
 public:
  EigenGemm(const GemmCase& c, const GemmOperands& ops)
      : m_(c.shape.m), n_(c.shape.n), k_(c.shape.k), a_(ops.A()),
        b_(tilekit_bench::ReplicateWeights(ops.B(), sizeof(float) * n_ * k_, c.copies)),
        c_(tilekit_bench::AllocateBuffer(sizeof(float) * m_ * n_)) {
    Eigen::setNbThreads(c.threads);
  }
  void Run(size_t copy) override {
    Eigen::Map<const RowMajor> a(a_, m_, k_), b(b_[copy].as<float>(), k_, n_);
    Eigen::Map<RowMajor> c(c_.as<float>(), m_, n_);
    c.noalias() = a * b;
  }
  const float* C() const override { return c_.as<float>(); }

 private:
  Eigen::Index m_, n_, k_;
  const float* a_;
  std::vector<tilekit::AlignedBuffer> b_;
  tilekit::AlignedBuffer c_;
};

}  // namespace

int main(int argc, char** argv) {
  // No symbol to trace: Eigen is templates. Require that no BLAS is loaded.
  tilekit_bench::RequirePeer("eigen", nullptr, nullptr);
  benchmark::AddCustomContext("peer", "eigen");
  benchmark::AddCustomContext(
      "peer_config", "Eigen " + std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                         std::to_string(EIGEN_MINOR_VERSION) + " (pure, no BLAS; -O3 -march=native; SIMD " +
                         Eigen::SimdInstructionSetsInUse() + "; OpenMP threads)");
  tilekit_bench::RegisterGemmCases("eigen", "f32", tilekit_bench::MakeGemm<EigenGemm>);
  return tilekit_bench::BenchMain(argc, argv);
}
