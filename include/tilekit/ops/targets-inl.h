// The ops module's per-target code; re-read once per Highway target (no
// include guard on purpose).
#include "tilekit/ops/elementwise-inl.h"
#include "tilekit/ops/rms_norm-inl.h"
#include "tilekit/ops/rope-inl.h"
#include "tilekit/ops/softmax-inl.h"
