// The convert module's per-target code; re-read once per Highway target (no
// include guard on purpose).
#include "tilekit/convert/convert-inl.h"
