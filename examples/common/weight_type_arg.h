// A weight type from its name on a command line (weight_type_name's: f32,
// bf16, int8, int4), for the examples.
#ifndef TILEKIT_EXAMPLES_COMMON_WEIGHT_TYPE_ARG_H_
#define TILEKIT_EXAMPLES_COMMON_WEIGHT_TYPE_ARG_H_

#include <cstring>

#include "tilekit/tilekit.h"

inline bool ParseWeightType(const char* name, tilekit::WeightType* type) {
  for (tilekit::WeightType t : {tilekit::WeightType::kF32, tilekit::WeightType::kBf16, tilekit::WeightType::kInt8,
                                tilekit::WeightType::kInt4}) {
    if (!std::strcmp(name, tilekit::weight_type_name(t))) {
      *type = t;
      return true;
    }
  }
  return false;
}

#endif  // TILEKIT_EXAMPLES_COMMON_WEIGHT_TYPE_ARG_H_
