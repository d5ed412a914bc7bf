// The API as an engine writes it: the natural calls compile (every entry point
// takes writable and read-only views alike), the API header brings no Highway
// with it, and Status is [[nodiscard]] (status_nodiscard_check.cc, compiled by
// a test that expects the compiler to refuse it). The graph and loader headers
// come first: they must compile on their own, with nothing included before them.
#include "tilekit/loaders/llama2c.h"
#include "tilekit/tilekit.h"

#if defined(HIGHWAY_HWY_FOREACH_TARGET_H_) || defined(HWY_HIGHWAY_INCLUDED) || defined(HWY_TARGETS)
#error "tilekit/tilekit.h, tilekit/graph/ or tilekit/loaders/ included Highway: it must declare, not compile, the kernels"
#endif

#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <type_traits>
#include <vector>

namespace tilekit {
namespace {

static_assert(std::is_convertible<MatrixView<float>, MatrixView<const float>>::value, "");
static_assert(std::is_convertible<MatrixView<bf16>, MatrixView<const bf16>>::value, "");
static_assert(!std::is_convertible<MatrixView<float>, MatrixView<const bf16>>::value, "no reinterpreting views");
static_assert(!std::is_convertible<MatrixView<const float>, MatrixView<float>>::value, "no dropping const");

// Every combination of writable / read-only A, fp32 / bf16 A and C, through
// gemm and gemm_fused, with a 3-segment (Q, K, V) weight: the calls of issue 20
// that did not compile (gemm_fused with a MatrixView<float>).
TEST(Api, NaturalCallsCompileAndRun) {
  const size_t m = 2, k = 8, n = 3;
  std::vector<float> a(m * k, 0.5f), w(k * n, 0.25f), c(m * 3 * n), out0(m * n), out1(m * n), out2(m * n);
  std::vector<bf16> a_bf16(m * k, f32_to_bf16(0.5f)), c_bf16(m * 3 * n);
  const WeightSource parts[3] = {weights_kn(w.data(), k, n), weights_kn(w.data(), k, n), weights_kn(w.data(), k, n)};
  PackedWeights qkv;
  ASSERT_EQ(pack_weights(parts, 3, WeightType::kF32, PackKind::kSeparate, &qkv), Status::kOk);

  float* a_ptr = a.data();
  const float* a_const = a.data();
  EXPECT_EQ(gemm(matrix(a_ptr, m, k), qkv, matrix(c.data(), m, 3 * n)), Status::kOk);
  EXPECT_EQ(gemm(matrix(a_const, m, k), qkv, matrix(c.data(), m, 3 * n)), Status::kOk);
  EXPECT_EQ(gemm(matrix(a_ptr, m, k), qkv, matrix(c_bf16.data(), m, 3 * n)), Status::kOk);
  EXPECT_EQ(gemm(matrix(a_bf16.data(), m, k), qkv, matrix(c.data(), m, 3 * n)), Status::kOk);
  EXPECT_EQ(gemm(matrix(a_bf16.data(), m, k), qkv, matrix(c_bf16.data(), m, 3 * n), Epilogue().with_scale(2.f)),
            Status::kOk);
  for (float v : c) EXPECT_EQ(v, 0.5f * 0.25f * k);

  const FusedOutput<float> outputs[3] = {{matrix(out0.data(), m, n), {}},
                                         {matrix(out1.data(), m, n), Epilogue().with(Activation::kRelu)},
                                         {matrix(out2.data(), m, n), {}}};
  EXPECT_EQ(gemm_fused(matrix(a_ptr, m, k), qkv, outputs, 3), Status::kOk);
  EXPECT_EQ(gemm_fused(matrix(a_const, m, k), qkv, outputs, 3), Status::kOk);
  EXPECT_EQ(gemm_fused(matrix(a_bf16.data(), m, k), qkv, outputs, 3), Status::kOk);
  for (const auto* o : {&out0, &out1, &out2}) {
    for (float v : *o) EXPECT_EQ(v, 0.5f * 0.25f * k);
  }
  std::vector<bf16> b0(m * n), b1(m * n), b2(m * n);
  const FusedOutput<bf16> bf16_outputs[3] = {
      {matrix(b0.data(), m, n), {}}, {matrix(b1.data(), m, n), {}}, {matrix(b2.data(), m, n), {}}};
  EXPECT_EQ(gemm_fused(matrix(a_ptr, m, k), qkv, bf16_outputs, 3), Status::kOk);

  float* c_ptr = c.data();
  EXPECT_EQ(apply_epilogue(matrix(c_ptr, m, 3 * n), Epilogue().with_scale(2.f)), Status::kOk);
  EXPECT_EQ(c[0], k * 0.25f);
}

// The graph as an engine writes it, from its header alone: a description
// error is kept and returned by build() (the first one), a good graph runs.
TEST(Api, GraphFromItsHeader) {
  {
    Graph g;
    const TensorId x = g.input(4);
    EXPECT_EQ(g.add(x, 7), kNoTensor);
    EXPECT_EQ(g.attention(x, 3, 0), kNoTensor);  // a later error does not replace the first
    GraphConfig gc;
    gc.max_tokens = 1;
    EXPECT_EQ(g.build(gc), Status::kInvalidArgument);
    EXPECT_NE(std::string(last_error()).find("unknown tensor 7"), std::string::npos) << last_error();
  }
  Graph g;
  const std::vector<float> w(4 * 4, 0.5f);
  const TensorId x = g.input(4);
  const TensorId y = g.add(g.linear(x, weights_nk(w.data(), 4, 4)), x);
  g.mark_output(y);
  GraphConfig gc;
  gc.max_tokens = 2;
  ASSERT_EQ(g.build(gc), Status::kOk) << last_error();
  std::fill(g.input_data(x), g.input_data(x) + 8, 1.f);
  const SequenceStep seq{nullptr, 0, 0, 2};
  ASSERT_EQ(g.run(Step{nullptr, &seq, 1}), Status::kOk) << last_error();
  const MatrixView<const float> out = g.output(y);
  ASSERT_EQ(out.rows, 2u);
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(out.data[i], 3.f);  // 4 · 0.5 + 1
}

}  // namespace
}  // namespace tilekit
