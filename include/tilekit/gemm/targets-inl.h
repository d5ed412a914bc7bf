// The gemm module's per-target code; re-read once per Highway target (no
// include guard on purpose). The matrix-instruction kernels (AMX, BFMMLA) are
// intrinsics compiled once, not per target: their records include them.
#include "tilekit/gemm/dot-inl.h"
#include "tilekit/gemm/loops-inl.h"
#include "tilekit/gemm/pack-inl.h"
#include "tilekit/gemm/quant-inl.h"
#include "tilekit/gemm/quant_act-inl.h"
#include "tilekit/gemm/store-inl.h"
