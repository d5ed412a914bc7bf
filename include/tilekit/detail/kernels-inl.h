// Aggregates every per-target module; included once per Highway target by
// detail/kernels.h. No include guard on purpose: it must be re-read per target.
#include "tilekit/attention/attention-inl.h"
#include "tilekit/convert/convert-inl.h"
#include "tilekit/cpu/target-inl.h"
#include "tilekit/gemm/gemm-inl.h"
#include "tilekit/gemm/pack-inl.h"
#include "tilekit/ops/rms_norm-inl.h"
#include "tilekit/ops/rope-inl.h"
#include "tilekit/ops/softmax-inl.h"
