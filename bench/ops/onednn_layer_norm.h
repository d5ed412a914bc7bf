// oneDNN's layer normalisation (dnnl::layer_normalization_forward, inference,
// with a scale: normalization_flags::use_scale) over an M × N matrix, fp32 or
// bf16 in and out: the `onednn_layer_norm` peer of the rms_norm rows. Layer
// norm also subtracts the mean (one more statistic than RMSNorm) and moves the
// same bytes. Built only when oneDNN is found (TILEKIT_BENCH_HAS_ONEDNN).
#ifndef TILEKIT_BENCH_OPS_ONEDNN_LAYER_NORM_H_
#define TILEKIT_BENCH_OPS_ONEDNN_LAYER_NORM_H_

#include <cstddef>
#include <functional>
#include <string>

namespace tilekit_bench {

// Sets oneDNN's OpenMP threads, creates the primitive over the caller's
// buffers (x, y: M × N of fp32 or bf16; scale: N floats) and returns one call.
std::function<void()> MakeOnednnLayerNorm(bool bf16, size_t m, size_t n, int threads, void* x, void* y, float* scale);
std::string OnednnVersion();

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_OPS_ONEDNN_LAYER_NORM_H_
