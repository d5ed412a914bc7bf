// Ignores a Status: the compiler must warn ("ignoring returned value of type
// tilekit::Status"); tests/CMakeLists.txt runs it on this file and checks.
#include "tilekit/tilekit.h"

void ignores_an_error(const float* in, tilekit::bf16* out) { tilekit::convert_f32_to_bf16(in, out, 1); }
