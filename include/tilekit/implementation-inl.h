// Every module's per-target code, for a kernels file that compiles them all
// (tilekit/implementation.h); re-read once per Highway target (no include
// guard on purpose).
#include "tilekit/attention/targets-inl.h"
#include "tilekit/convert/targets-inl.h"
#include "tilekit/cpu/targets-inl.h"
#include "tilekit/epilogue/targets-inl.h"
#include "tilekit/gemm/targets-inl.h"
#include "tilekit/ops/targets-inl.h"
