// The API as an engine writes it: the natural calls compile (every entry point
// takes writable and read-only views alike), the API header brings no Highway
// with it, and Status is [[nodiscard]] (status_nodiscard_check.cc, compiled by
// a test that expects the compiler to refuse it).
#include "tilekit/tilekit.h"

#if defined(HIGHWAY_HWY_FOREACH_TARGET_H_) || defined(HWY_HIGHWAY_INCLUDED) || defined(HWY_TARGETS)
#error "tilekit/tilekit.h included Highway: it must declare, not compile, the kernels"
#endif

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace tilekit
