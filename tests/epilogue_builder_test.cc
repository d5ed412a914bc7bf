// Epilogue's builders: chained on a temporary they return a value, so a
// reference bound to the chain's result extends its lifetime instead of
// dangling; on a named Epilogue they change it in place.
#include <gtest/gtest.h>

#include <type_traits>
#include <utility>

#include "tilekit/epilogue/epilogue.h"

namespace tilekit {
namespace {

// The check that fails while the builders return Epilogue& on a temporary.
static_assert(std::is_same_v<decltype(Epilogue().with_bias(nullptr)), Epilogue>);
static_assert(std::is_same_v<decltype(Epilogue().with_bias(nullptr).with(Activation::kRelu)), Epilogue>);
static_assert(std::is_same_v<decltype(std::declval<Epilogue&>().with_bias(nullptr)), Epilogue&>);

TEST(EpilogueBuilder, ChainOnATemporaryIsAValue) {
  const float bias[2] = {1.f, 2.f}, residual[4] = {};
  const Epilogue e = Epilogue()
                         .with_scale(0.5f)
                         .with_beta(1.f)
                         .with_bias(bias)
                         .with(Activation::kGeluTanh)
                         .with_residual(residual, 2)
                         .with_clamp(-1.f, 3.f);
  EXPECT_EQ(e.alpha, 0.5f);
  EXPECT_EQ(e.beta, 1.f);
  EXPECT_EQ(e.bias, bias);
  EXPECT_EQ(e.activation, Activation::kGeluTanh);
  EXPECT_EQ(e.residual, residual);
  EXPECT_EQ(e.ld_residual, 2u);
  EXPECT_EQ(e.clamp_min, -1.f);
  EXPECT_EQ(e.clamp_max, 3.f);
}

TEST(EpilogueBuilder, ReferenceToAChainOnATemporaryStaysValid) {
  const float b[3] = {};
  const Epilogue& e = Epilogue().with_bias(b).with(Activation::kRelu);
  EXPECT_EQ(e.bias, b);
  EXPECT_EQ(e.activation, Activation::kRelu);
  EXPECT_EQ(e.alpha, 1.f);
  EXPECT_FALSE(e.is_identity());
}

TEST(EpilogueBuilder, ChainOnANamedEpilogueChangesItInPlace) {
  const float b[3] = {};
  Epilogue e;
  Epilogue& chained = e.with_bias(b).with(Activation::kSilu).with_clamp(0.f, 6.f);
  EXPECT_EQ(&chained, &e);
  EXPECT_EQ(e.bias, b);
  EXPECT_EQ(e.activation, Activation::kSilu);
  EXPECT_TRUE(e.clamps());
  e.with_scale(2.f);  // a statement on its own still sets the field
  EXPECT_EQ(e.alpha, 2.f);
}

}  // namespace
}  // namespace tilekit
