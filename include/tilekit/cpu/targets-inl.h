// The cpu module's per-target code; re-read once per Highway target (no include
// guard on purpose).
#include "tilekit/cpu/target-inl.h"
