// oneDNN on the shared GEMM cases, the way an inference engine uses it: a
// matmul primitive created with format_tag::any for the weights, the weights
// reordered once into the layout it asked for (its blocked, prepacked format),
// outside the timed loop. f32, and bf16 × bf16 → f32 (AMX brgemm where the CPU
// and OS allow it). The implementation oneDNN picked goes into each row's label.
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
#include "peer_check.h"

namespace {

using tilekit_bench::GemmCase;
using tilekit_bench::GemmOperands;
using dnnl::memory;
using tag = dnnl::memory::format_tag;
using dt = dnnl::memory::data_type;

class OnednnMatmul : public tilekit_bench::GemmInstance {
 public:
  OnednnMatmul(const GemmCase& c, const GemmOperands& ops) : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    omp_set_num_threads(c.threads);
    const memory::dim m = c.shape.m, n = c.shape.n, k = c.shape.k;
    const dt in = c.dtype == "bf16" ? dt::bf16 : dt::f32;
    const memory::desc a_md({m, k}, in, tag::ab), c_md({m, n}, dt::f32, tag::ab);
    pd_ = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, memory::desc({k, n}, in, tag::any), c_md), engine_);
    matmul_ = dnnl::matmul(pd_);

    // Inputs arrive as fp32; oneDNN's reorders convert (round to nearest even)
    // and pack them once, here.
    memory a_f32({{m, k}, dt::f32, tag::ab}, engine_, const_cast<float*>(ops.A()));
    memory b_f32({{k, n}, dt::f32, tag::ab}, engine_, const_cast<float*>(ops.B()));
    a_buf_ = tilekit_bench::AllocateBuffer(a_md.get_size());
    a_ = memory(a_md, engine_, a_buf_.data());
    dnnl::reorder(a_f32, a_).execute(stream_, a_f32, a_);
    for (size_t i = 0; i < c.copies; ++i) {
      b_bufs_.push_back(tilekit_bench::AllocateBuffer(pd_.weights_desc().get_size()));
      b_.emplace_back(pd_.weights_desc(), engine_, b_bufs_.back().data());
      dnnl::reorder(b_f32, b_.back()).execute(stream_, b_f32, b_.back());
    }
    c_buf_ = tilekit_bench::AllocateBuffer(c_md.get_size());
    c_ = memory(c_md, engine_, c_buf_.data());
    stream_.wait();
  }
  void Run(size_t copy) override {
    matmul_.execute(stream_, {{DNNL_ARG_SRC, a_}, {DNNL_ARG_WEIGHTS, b_[copy]}, {DNNL_ARG_DST, c_}});
    stream_.wait();
  }
  const float* C() const override { return c_buf_.as<float>(); }
  std::string Detail() const override { return pd_.impl_info_str(); }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul matmul_;
  tilekit::AlignedBuffer a_buf_, c_buf_;
  std::vector<tilekit::AlignedBuffer> b_bufs_;
  memory a_, c_;
  std::vector<memory> b_;
};

}  // namespace

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
  tilekit_bench::RegisterGemmCases("onednn", "f32", tilekit_bench::MakeGemm<OnednnMatmul>);
  tilekit_bench::RegisterGemmCases("onednn", "bf16", tilekit_bench::MakeGemm<OnednnMatmul>);
  return tilekit_bench::BenchMain(argc, argv);
}
