// The attention module's per-target code; re-read once per Highway target (no
// include guard on purpose).
#include "tilekit/convert/targets-inl.h"
#include "tilekit/attention/attention-inl.h"
#include "tilekit/attention/tiled_bf16-inl.h"
#include "tilekit/attention/tiled_brgemm-inl.h"
#include "tilekit/attention/store-inl.h"
