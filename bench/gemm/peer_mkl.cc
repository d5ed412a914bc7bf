// MKL on the shared GEMM cases (f32: cblas_sgemm, cblas_sgemv at M = 1 like the
// other BLAS peers), when MKL is installed. Built only if CMake found mkl.h and
// libmkl_rt; Debian 12 main does not ship it.
#include <mkl.h>

#include <string>
#include <vector>

#include "bench_main.h"
#include "gemm_cases.h"
#include "peer_check.h"

namespace {

using tilekit_bench::GemmCase;
using tilekit_bench::GemmOperands;

class MklSgemm : public tilekit_bench::GemmInstance {
 public:
  MklSgemm(const GemmCase& c, const GemmOperands& ops)
      : m_(c.shape.m), n_(c.shape.n), k_(c.shape.k), a_(ops.A()),
        b_(tilekit_bench::ReplicateWeights(ops.B(), sizeof(float) * n_ * k_, c.copies)),
        c_(tilekit_bench::AllocateBuffer(sizeof(float) * m_ * n_)) {
    mkl_set_num_threads(c.threads);
  }
  void Run(size_t copy) override {
    if (m_ == 1) {  // c = Bᵀ·a, as for the other BLAS peers
      cblas_sgemv(CblasRowMajor, CblasTrans, k_, n_, 1.0f, b_[copy].as<float>(), n_, a_, 1, 0.0f, c_.as<float>(), 1);
    } else {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m_, n_, k_, 1.0f, a_, k_, b_[copy].as<float>(), n_,
                  0.0f, c_.as<float>(), n_);
    }
  }
  const float* C() const override { return c_.as<float>(); }
  std::string Detail() const override { return m_ == 1 ? "cblas_sgemv" : "cblas_sgemm"; }

 private:
  MKL_INT m_, n_, k_;
  const float* a_;
  std::vector<tilekit::AlignedBuffer> b_;
  tilekit::AlignedBuffer c_;
};

}  // namespace

int main(int argc, char** argv) {
  const std::string so = tilekit_bench::RequirePeer("mkl", "cblas_sgemm", "mkl");
  char version[256];
  mkl_get_version_string(version, sizeof(version));
  benchmark::AddCustomContext("peer", "mkl");
  benchmark::AddCustomContext("peer_config", version);
  benchmark::AddCustomContext("peer_object", so);
  tilekit_bench::RegisterGemmCases("mkl", "f32", tilekit_bench::MakeGemm<MklSgemm>);
  return tilekit_bench::BenchMain(argc, argv);
}
