// oneDNN's matmul as a benchmark instance (gemm_cases.h), weights reordered
// once into its preferred layout; shared by bench_peer_onednn and
// interleaved_onednn.
#ifndef TILEKIT_BENCH_ONEDNN_MATMUL_H_
#define TILEKIT_BENCH_ONEDNN_MATMUL_H_

#include <omp.h>

#include <oneapi/dnnl/dnnl.hpp>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gemm_cases.h"
#include "quantized_weights.h"

namespace tilekit_bench {

class OnednnMatmul : public GemmInstance {
  using memory = dnnl::memory;
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;

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
    a_buf_ = AllocateBuffer(a_md.get_size());
    a_ = memory(a_md, engine_, a_buf_.data());
    dnnl::reorder(a_f32, a_).execute(stream_, a_f32, a_);
    for (size_t i = 0; i < c.copies; ++i) {
      b_bufs_.push_back(AllocateBuffer(pd_.weights_desc().get_size()));
      b_.emplace_back(pd_.weights_desc(), engine_, b_bufs_.back().data());
      dnnl::reorder(b_f32, b_.back()).execute(stream_, b_f32, b_.back());
    }
    c_buf_ = AllocateBuffer(c_md.get_size());
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

// oneDNN's int8 matmul at its best for 8-bit weights: s8 weights, one scale
// per output column over all of K (oneDNN 2.6 has no K groups), reordered once
// into its layout; fp32 activations quantized to s8 in every call by oneDNN's
// reorder, with one scale per tensor calibrated once on these activations (a
// static scale: with a run-time scale oneDNN 2.6 leaves its brgemm kernel for
// a slower one); fp32 output through output scales (activation scale × column
// scale). tilekit's int8 kernels quantize their activations inside the call
// too. The dtype of the row is int8.
class OnednnInt8Matmul : public GemmInstance {
  using memory = dnnl::memory;
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;

 public:
  OnednnInt8Matmul(const GemmCase& c, const GemmOperands& ops)
      : engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    omp_set_num_threads(c.threads);
    const memory::dim m = c.shape.m, n = c.shape.n, k = c.shape.k;
    n_ = static_cast<double>(n);
    // Activations: one scale for the tensor, calibrated on them.
    std::vector<int8_t> a_q;
    std::vector<float> a_scale;
    a_seen_ = QuantizeColumns(ops.A(), static_cast<size_t>(m * k), 1, 127, 0, &a_q, &a_scale);
    // Weights: one scale per column (N), all of K.
    std::vector<int8_t> b_q;
    std::vector<float> b_scale;
    b_seen_ = QuantizeColumns(ops.B(), static_cast<size_t>(k), static_cast<size_t>(n), 127, 0, &b_q, &b_scale);
    std::vector<float> out_scales(static_cast<size_t>(n));
    for (size_t j = 0; j < out_scales.size(); ++j) out_scales[j] = a_scale[0] * b_scale[j];
    dnnl::primitive_attr attr;
    attr.set_output_scales(1 << 1, out_scales);
    const memory::desc a_md({m, k}, dt::s8, tag::ab), c_md({m, n}, dt::f32, tag::ab);
    pd_ = dnnl::matmul::primitive_desc(dnnl::matmul::desc(a_md, memory::desc({k, n}, dt::s8, tag::any), c_md), attr,
                                       engine_);
    matmul_ = dnnl::matmul(pd_);
    // fp32 A -> s8 A: a reorder with the inverse of the activation scale.
    dnnl::primitive_attr quantize;
    quantize.set_output_scales(0, {a_scale[0] == 0.f ? 0.f : 1.f / a_scale[0]});
    const memory::desc a_f32_md({m, k}, dt::f32, tag::ab);
    quantize_ = dnnl::reorder(dnnl::reorder::primitive_desc(engine_, a_f32_md, engine_, a_md, quantize));
    a_src_ = memory(a_f32_md, engine_, const_cast<float*>(ops.A()));
    a_buf_ = AllocateBuffer(a_md.get_size());
    a_ = memory(a_md, engine_, a_buf_.data());
    memory b_plain({{k, n}, dt::s8, tag::ab}, engine_, b_q.data());
    for (size_t i = 0; i < c.copies; ++i) {
      b_bufs_.push_back(AllocateBuffer(pd_.weights_desc().get_size()));
      b_.emplace_back(pd_.weights_desc(), engine_, b_bufs_.back().data());
      dnnl::reorder(b_plain, b_.back()).execute(stream_, b_plain, b_.back());
    }
    c_buf_ = AllocateBuffer(c_md.get_size());
    c_ = memory(c_md, engine_, c_buf_.data());
    stream_.wait();
  }
  void Run(size_t copy) override {
    quantize_.execute(stream_, a_src_, a_);
    matmul_.execute(stream_, {{DNNL_ARG_SRC, a_}, {DNNL_ARG_WEIGHTS, b_[copy]}, {DNNL_ARG_DST, c_}});
    stream_.wait();
  }
  const float* C() const override { return c_buf_.as<float>(); }
  const float* ASeen() const override { return a_seen_.data(); }
  const float* BSeen() const override { return b_seen_.data(); }
  // Its weights: one byte per value (the reordered layout may pad) and one
  // fp32 scale per column.
  double WeightBytes() const override { return static_cast<double>(pd_.weights_desc().get_size()) + 4.0 * n_; }
  std::string Detail() const override { return pd_.impl_info_str(); }

 private:
  dnnl::engine engine_;
  dnnl::stream stream_;
  dnnl::matmul::primitive_desc pd_;
  dnnl::matmul matmul_;
  tilekit::AlignedBuffer a_buf_, c_buf_;
  std::vector<tilekit::AlignedBuffer> b_bufs_;
  std::vector<float> a_seen_, b_seen_;
  dnnl::reorder quantize_;
  memory a_src_;
  double n_ = 0;
  memory a_, c_;
  std::vector<memory> b_;
};

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_ONEDNN_MATMUL_H_
