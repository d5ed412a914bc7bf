// The GEMM cases every library runs, and the one registration path that gives
// each library the same names, operands, weight rotation, counters and check.
//
// Convention: C[M,N] = A[M,K] · B[K,N], row-major, fp32 C; B holds the weights.
// A Llama projection written out_features × in_features is N × K here.
//
// Rows are named gemm/<library>/<dtype>/M:<m>/N:<n>/K:<k>/threads:<t>/<warm|cold>
// and carry the counters GFLOP/s (2·M·N·K per call) and GB/s (weight bytes per
// call, scales included). dtype: f32 (fp32 × fp32), bf16 (bf16 × bf16 → fp32),
// f32_bf16w (fp32 activations × bf16 weights → fp32), int8 / int4 (quantized
// weights, a scale per column and 32 K values: tilekit's group-32 weights,
// GGUF's Q8_0 / Q4_0 size; a peer reports the bytes of its own format).
//
// Adding a library is one file and one CMake line (see bench/README.md):
//
//   class MyGemm : public tilekit_bench::GemmInstance {
//    public:
//     MyGemm(const GemmCase& c, const GemmOperands& ops);  // untimed: threads, conversion,
//                                                          // c.copies packed weight buffers
//     void Run(size_t copy) override;                      // timed: C = A · B[copy]
//     const float* C() const override;                     // for the harness's spot check
//   };
//   int main(int argc, char** argv) {
//     tilekit_bench::RegisterGemmCases("mylib", "f32", tilekit_bench::MakeGemm<MyGemm>);
//     return tilekit_bench::BenchMain(argc, argv);
//   }
#ifndef TILEKIT_BENCH_GEMM_CASES_H_
#define TILEKIT_BENCH_GEMM_CASES_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tilekit/base/aligned_buffer.h"

namespace tilekit_bench {

struct GemmShape {
  int64_t m, n, k;
  const char* model;  // where the shape comes from: "seed_mlp", "llama7b" or "small" (always warm)
};

// The seed tutorial's MLP layers, M ∈ {256, 32, 10} × (N, K) ∈ {(4096, 4096),
// (11008, 4096), (10, 11008)}, and Llama-7B's projections, M ∈ {1, 16, 128,
// 512} × (N, K) ∈ {(4096, 4096) q/k/v/o, (11008, 4096) gate/up, (4096, 11008)
// down}.
const std::vector<GemmShape>& GemmShapes();
const std::vector<int>& GemmThreadCounts();  // {1, 2}

// Bytes per weight element for a dtype, scales included: 4 for f32, 2 for
// bf16 and f32_bf16w, 1 + 4/32 for int8 and 0.5 + 4/32 for int4 (an fp32
// scale per 32 values).
double WeightElementBytes(const std::string& dtype);

struct GemmCase {
  GemmShape shape;
  std::string dtype;
  int threads;   // the instance runs on exactly this many threads
  bool cold;     // weights come from memory, not from the LLC
  size_t copies; // weight buffers the timed loop rotates through (1 when warm)
};

// Cold weights: with one weight buffer, M <= 32 would time the LLC (~105 MB
// here, larger than most weight matrices), not the memory a real model streams
// from. Those cases rotate through enough copies that together they exceed
// twice the LLC, for every library alike. Larger M is compute-bound: one copy.
constexpr int64_t kColdMaxM = 32;
size_t ColdCopies(size_t weight_bytes);

// fp32 inputs shared by every library, uniform in [-1, 1) from a fixed seed
// per shape: each library converts them to its dtype and layout, and all of
// them compute the same product.
struct GemmOperands {
  tilekit::AlignedBuffer a;  // M×K fp32
  tilekit::AlignedBuffer b;  // K×N fp32
  const float* A() const { return a.as<float>(); }
  const float* B() const { return b.as<float>(); }
};
GemmOperands MakeOperands(const GemmShape& s);

// Spot-checks 16 outputs (the corners among them) against fp64 sums over the
// inputs as the library saw them (bf16-rounded where its dtype says so, or the
// quantized values an instance reports: a_seen, b_seen). The bound, 1e-3 of
// Σ|a·b|, is above fp32 accumulation error for K = 11008 (K·2^-24 ≈ 7e-4) and
// below what a wrong layout or a transposed operand gives (≈ 1/√K of Σ|a·b|,
// i.e. 1-2% here). Returns "" or what is wrong.
std::string CheckSample(const GemmCase& c, const GemmOperands& ops, const float* out,
                        const float* a_seen = nullptr, const float* b_seen = nullptr);

// One library's GEMM for one case, set up outside the timed loop.
class GemmInstance {
 public:
  virtual ~GemmInstance() = default;
  // C = A · B[copy], copy < case.copies. The only call that is timed.
  virtual void Run(size_t copy) = 0;
  // The result of the last Run, fp32 row-major M×N.
  virtual const float* C() const = 0;
  // What the library chose for this case (e.g. oneDNN's implementation name);
  // goes into the row's label.
  virtual std::string Detail() const { return ""; }
  // The operands as the library multiplies them, fp32 row-major (A: M×K, B:
  // K×N), where they are not the dtype's rounding of the inputs: quantized
  // values. Null: the check rounds the inputs as the dtype says.
  virtual const float* ASeen() const { return nullptr; }
  virtual const float* BSeen() const { return nullptr; }
  // Bytes of weights (scales included) one call reads, where not the dtype's
  // WeightElementBytes · N · K (a peer's own quantized format); 0: the dtype's.
  virtual double WeightBytes() const { return 0; }
};

// Builds an instance; may throw (the row is then reported as an error).
using GemmFactory = std::function<std::unique_ptr<GemmInstance>(const GemmCase&, const GemmOperands&)>;

template <class Instance>
std::unique_ptr<GemmInstance> MakeGemm(const GemmCase& c, const GemmOperands& ops) {
  return std::make_unique<Instance>(c, ops);
}

// Registers every shape × thread count for one library and dtype. Each case
// builds its operands and instance once (reused across repetitions, freed when
// the next case starts, so only one case's buffers exist at a time), checks 16
// sampled outputs against an fp64 reference, then times Run.
void RegisterGemmCases(const std::string& library, const std::string& dtype, GemmFactory make);

// --- helpers for instances -------------------------------------------------

// A 64-byte-aligned, huge-page-hinted buffer (every library gets the same
// memory, so no one's TLB is favoured); throws std::bad_alloc on failure.
tilekit::AlignedBuffer AllocateBuffer(size_t bytes);

// `copies` separate buffers holding the same bytes: distinct addresses are what
// make the rotation cold, the values need not differ.
std::vector<tilekit::AlignedBuffer> ReplicateWeights(const void* src, size_t bytes, size_t copies);

// fp32 -> bf16 bits, round to nearest even (tilekit::f32_to_bf16), for
// libraries that take bf16 input from the caller.
void RoundToBf16(const float* in, uint16_t* out, size_t n);

}  // namespace tilekit_bench

#endif  // TILEKIT_BENCH_GEMM_CASES_H_
