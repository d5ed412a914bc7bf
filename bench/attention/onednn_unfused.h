// oneDNN's unfused attention, as a framework's eager mode runs it: per query
// head, scores = scale · Q_h K_hᵀ (+ causal mask, a binary post-op), softmax
// in place, O_h = P V_h. Strided memory descriptors read Q/K/V/O in the
// [tokens][heads][dim] layout (no copies); GQA maps q-head h to KV head
// h / (Hq / Hkv). bf16: Q/K/V bf16, scores and P bf16, O fp32. The peer of
// bench_tilekit_attention and part of bench_tilekit_graph's eager layer.
#ifndef TILEKIT_BENCH_ATTENTION_ONEDNN_UNFUSED_H_
#define TILEKIT_BENCH_ATTENTION_ONEDNN_UNFUSED_H_

#include <cmath>
#include <cstddef>
#include <oneapi/dnnl/dnnl.hpp>
#include <unordered_map>
#include <vector>

namespace tilekit_bench {

struct UnfusedShape {
  size_t t, s, hq, hkv, d;  // queries, keys (the last t of them are the queries' own), heads, head dim
  bool bf16;
};

class OnednnUnfused {
  using memory = dnnl::memory;
  using dt = memory::data_type;

 public:
  OnednnUnfused(const UnfusedShape& c, bool causal) : c_(c), engine_(dnnl::engine::kind::cpu, 0), stream_(engine_) {
    const memory::dim t = c.t, s = c.s, d = c.d, hq = c.hq, hkv = c.hkv;
    const dt in = c.bf16 ? dt::bf16 : dt::f32;
    q_md_ = memory::desc({t, d}, in, {hq * d, 1});
    k_md_ = memory::desc({d, s}, in, {1, hkv * d});  // Kᵀ, read in place
    v_md_ = memory::desc({s, d}, in, {hkv * d, 1});
    o_md_ = memory::desc({t, d}, dt::f32, {hq * d, 1});
    s_md_ = memory::desc({t, s}, in, {s, 1});
    dnnl::primitive_attr attr;
    attr.set_output_scales(0, {1.f / std::sqrt(static_cast<float>(c.d))});
    if (causal) {
      mask_md_ = memory::desc({t, s}, dt::f32, {s, 1});
      dnnl::post_ops po;
      po.append_binary(dnnl::algorithm::binary_add, mask_md_);
      attr.set_post_ops(po);
      mask_.assign(c.t * c.s, 0.f);
      for (size_t i = 0; i < c.t; ++i) {
        for (size_t j = c.s - c.t + i + 1; j < c.s; ++j) mask_[i * c.s + j] = -INFINITY;
      }
    }
    mm1_ = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(q_md_, k_md_, s_md_), attr, engine_));
    softmax_ = dnnl::softmax_forward(dnnl::softmax_forward::primitive_desc(
        dnnl::softmax_forward::desc(dnnl::prop_kind::forward_inference, s_md_, 1), engine_));
    mm2_ = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(s_md_, v_md_, o_md_), engine_));
    scores_.resize(c.t * c.s * (c.bf16 ? 2 : 4));
  }
  // q: [T][Hq][d], k, v: [S][Hkv][d] (f32 or bf16 per shape), o: [T][Hq][d] f32.
  void Run(const void* q, const void* k, const void* v, float* o) {
    const size_t e = c_.bf16 ? 2 : 4, group = c_.hq / c_.hkv;
    memory sm(s_md_, engine_, scores_.data());
    memory mask;
    if (!mask_.empty()) mask = memory(mask_md_, engine_, mask_.data());
    for (size_t h = 0; h < c_.hq; ++h) {
      const size_t hk = h / group;
      memory qm(q_md_, engine_, const_cast<char*>(static_cast<const char*>(q) + h * c_.d * e));
      memory km(k_md_, engine_, const_cast<char*>(static_cast<const char*>(k) + hk * c_.d * e));
      memory vm(v_md_, engine_, const_cast<char*>(static_cast<const char*>(v) + hk * c_.d * e));
      memory om(o_md_, engine_, o + h * c_.d);
      std::unordered_map<int, memory> args1{{DNNL_ARG_SRC, qm}, {DNNL_ARG_WEIGHTS, km}, {DNNL_ARG_DST, sm}};
      if (!mask_.empty()) args1[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] = mask;
      mm1_.execute(stream_, args1);
      softmax_.execute(stream_, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_DST, sm}});
      mm2_.execute(stream_, {{DNNL_ARG_SRC, sm}, {DNNL_ARG_WEIGHTS, vm}, {DNNL_ARG_DST, om}});
    }
    stream_.wait();
  }

 private:
  UnfusedShape c_;
  dnnl::engine engine_;
  dnnl::stream stream_;
  memory::desc q_md_, k_md_, v_md_, o_md_, s_md_, mask_md_;
  dnnl::matmul mm1_, mm2_;
  dnnl::softmax_forward softmax_;
  std::vector<float> mask_;
  std::vector<char> scores_;
};

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_ATTENTION_ONEDNN_UNFUSED_H_
