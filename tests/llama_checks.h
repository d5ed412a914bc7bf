// Checks shared by the tests that run a whole model against the fp64
// reference (graph_test, model_families_test): a random prompt, and the
// logits of a step within the reference's bounds with the greedy choice
// asserted where the reference's top two are further apart than their bounds.
#ifndef TILEKIT_TESTS_LLAMA_CHECKS_H_
#define TILEKIT_TESTS_LLAMA_CHECKS_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "harness.h"
#include "llama_reference.h"

namespace tilekit {
namespace testing {

inline size_t ArgMax(const float* x, size_t n) {
  size_t best = 0;
  for (size_t i = 1; i < n; ++i) if (x[i] > x[best]) best = i;
  return best;
}

// Logits against the reference; returns the reference's greedy token, and
// checks tilekit's agrees where the reference's top two are further apart than
// their bounds (else the choice is within rounding and not asserted, and
// counted in *ambiguous). GRAPH_TEST_VERBOSE prints those cases' margins.
inline size_t CheckLogits(const float* got, const EV& ref, const char* what, int* ambiguous) {
  size_t best = 0, second = ref.v.size() > 1 ? 1 : 0;
  for (size_t j = 0; j < ref.v.size(); ++j) {
    EXPECT_TRUE(WithinBound(std::fabs(got[j] - ref.v[j]), kSigmas * ref.e[j], what)) << "logit " << j;
    if (ref.v[j] > ref.v[best]) second = best, best = j;
    else if (j != best && ref.v[j] > ref.v[second]) second = j;
  }
  const size_t mine = ArgMax(got, ref.v.size());
  if (ref.v[best] - ref.v[second] > kSigmas * (ref.e[best] + ref.e[second])) {
    EXPECT_EQ(mine, best) << what;
  } else {
    ++*ambiguous;
    if (std::getenv("GRAPH_TEST_VERBOSE")) {
      double worst = 0;
      for (size_t j = 0; j < ref.v.size(); ++j) worst = std::max(worst, std::fabs(got[j] - ref.v[j]) / (kSigmas * ref.e[j]));
      std::printf("gap %g, bounds %g %g, top %g, worst err/bound %g\n", ref.v[best] - ref.v[second], ref.e[best],
                  ref.e[second], ref.v[best], worst);
    }
  }
  return best;
}

// n random token ids below vocab.
inline std::vector<int32_t> Prompt(size_t n, size_t vocab, uint64_t stream) {
  Rng rng(stream);
  std::vector<int32_t> p(n);
  for (int32_t& t : p) t = static_cast<int32_t>(rng.below(vocab));
  return p;
}

}  // namespace testing
}  // namespace tilekit

#endif  // TILEKIT_TESTS_LLAMA_CHECKS_H_
