// tilekit against oneDNN in one process, call by call: a ratio that survives
// this shared machine's slow phases (they lasted seconds to minutes and moved
// absolute figures by up to 2x, more than the differences being tuned).
//
//   bench/interleaved_onednn M N K THREADS [f32|bf16|f32_bf16w|int8|int4]
//
// Each round times both libraries (best of 2 calls each, order alternating
// between rounds) and the tool prints the median of the per-round ratios with
// its interquartile range. Both sides are the instances bench_tilekit_gemm and
// bench_peer_onednn time (tilekit_gemm_instance.h, onednn_matmul.h), on the
// same operands (gemm_cases.h), and their results are spot-checked against
// fp64 afterwards. M <= 32 rotates through weight copies as scripts/bench does
// (more than 2 × the LLC); TILEKIT_BENCH_COPIES=n overrides; ROUNDS=n (default
// 15); see interleaved_case.h. dtypes: f32 (both fp32), bf16 (both bf16 × bf16
// → fp32), f32_bf16w (tilekit fp32 A × bf16 weights; oneDNN has no such
// primitive, so it runs bf16 × bf16), int8 / int4 (tilekit's quantized
// weights, a scale per 32 K values, fp32 A; oneDNN's s8 × s8 matmul with
// per-column scales, A quantized before timing, for both: oneDNN 2.6 has no
// 4-bit weights). GB/s count each library's own weight bytes. Each round also reads the same number of bytes from
// weight-sized copies of its own, on as many threads, with the read-ceiling
// kernels of bench_ceilings (read_bandwidth.h; the faster of plain and
// prefetching), so "share of read bandwidth" is a per-round ratio too, and
// runs the compute ceiling of its dtype on as many threads (compute_peak.h:
// FMA for f32, AMX for the bf16 dtypes where granted) for "share of peak". Not
// part of scripts/bench: a tool for tuning and for the ratios quoted in
// docs/performance.md (the current ones) and docs/performance-history.md.
#include "tilekit/tilekit.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "compute_peak.h"
#include "gemm_cases.h"
#include "interleaved_case.h"
#include "interleaved_stats.h"
#include "peak_runner.h"
#include "onednn_matmul.h"
#include "read_bandwidth.h"
#include "tilekit_gemm_instance.h"

namespace {

using tilekit_bench::GemmCase;
using tilekit_bench::GemmInstance;
using tilekit_bench::PeakRunner;

using tilekit_bench::Quantile;

// Reads one weight-sized copy per call (rotating through `copies` of them, as
// the GEMMs do) on `threads` threads, each its contiguous share.
class WeightReader {
 public:
  WeightReader(size_t weight_bytes, size_t copies, int threads, tilekit_bench::ReadFn fn)
      : copies_(copies), threads_(static_cast<size_t>(threads)), pool_(threads_), fn_(fn) {
    share_ = weight_bytes / sizeof(float) / threads_ / tilekit_bench::kReadGranule * tilekit_bench::kReadGranule;
    if (!share_ || !buf_.allocate(copies_ * threads_ * share_ * sizeof(float), tilekit::PageHint::kHuge)) {
      throw std::runtime_error("cannot allocate the read buffer");
    }
    std::fill_n(buf_.as<float>(), copies_ * threads_ * share_, 1.0f);
  }
  size_t bytes() const { return threads_ * share_ * sizeof(float); }
  void Run(size_t copy) {
    copy_ = copy % copies_;
    pool_.run(threads_, &Task, this);
  }

 private:
  static void Task(void* self, size_t t) {
    auto& r = *static_cast<WeightReader*>(self);
    r.sink_[t % 2] = r.fn_(r.buf_.as<float>() + (r.copy_ * r.threads_ + t) * r.share_, r.share_);
  }
  size_t copies_, threads_, share_ = 0, copy_ = 0;
  tilekit::ThreadPool pool_;
  tilekit_bench::ReadFn fn_;
  tilekit::AlignedBuffer buf_;
  volatile float sink_[2] = {};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 5) {
    std::fprintf(stderr, "usage: %s M N K THREADS [f32|bf16|f32_bf16w|int8|int4]\n", argv[0]);
    return 2;
  }
  tilekit_bench::InterleavedCase cli;
  const int threads = std::atoi(argv[4]);
  if (!cli.Parse(argv[1], argv[2], argv[3], argc > 5 ? argv[5] : nullptr) || threads < 1) {
    std::fprintf(stderr, "bad arguments\n");
    return 2;
  }
  const int64_t M = cli.shape.m, N = cli.shape.n, K = cli.shape.k;
  const tilekit_bench::GemmShape& shape = cli.shape;
  const std::string& dtype = cli.dtype;
  const bool cold = cli.cold;
  const size_t weight_bytes = cli.weight_bytes, copies = cli.copies, rounds = cli.rounds;

  const GemmCase tk_case{shape, dtype, threads, cold, copies};
  // oneDNN has no fp32 × bf16-weights primitive: it runs bf16 × bf16 there;
  // and no 4-bit weights: int8 there.
  const bool quantized = dtype == "int8" || dtype == "int4";
  const GemmCase dnnl_case{shape, dtype == "f32" ? "f32" : quantized ? "int8" : "bf16", threads, cold, copies};
  const tilekit_bench::GemmOperands ops = tilekit_bench::MakeOperands(shape);
  std::unique_ptr<GemmInstance> tilekit_gemm, onednn;
  std::vector<std::unique_ptr<WeightReader>> readers;
  const std::vector<tilekit_bench::ComputePeak> peaks = tilekit_bench::ComputePeaks();
  const tilekit_bench::ComputePeak* peak_kind = tilekit_bench::PeakFor(peaks, dtype);
  std::unique_ptr<PeakRunner> peak;
  if (peak_kind) peak = std::make_unique<PeakRunner>(*peak_kind, threads);
  try {
    tilekit_gemm = tilekit_bench::MakeTilekitGemm(tk_case, ops);
    if (quantized) {
      onednn = std::make_unique<tilekit_bench::OnednnInt8Matmul>(dnnl_case, ops);
    } else {
      onednn = std::make_unique<tilekit_bench::OnednnMatmul>(dnnl_case, ops);
    }
    // Warm weights (one copy, in the LLC) have no memory bound to compare with.
    for (const tilekit_bench::Reader& r : tilekit_bench::Readers()) {
      if (cold) readers.push_back(std::make_unique<WeightReader>(weight_bytes, copies, threads, r.fn));
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "setup failed: %s\n", e.what());
    return 1;
  }

  tilekit_bench::CallTimer timer(copies);
  tilekit_gemm->Run(0);
  onednn->Run(0);
  for (auto& r : readers) r->Run(0);
  if (peak) peak->Run(0);  // wakes the unit (AVX-512 and AMX power up on first use)

  // Per round: both GEMMs (order alternating), every reader and the compute
  // ceiling; the read ceiling of the round is its fastest reader.
  std::vector<double> t_tk, t_dnnl, t_read, ratio, bw_share, t_peak, peak_share;
  // Each library's calls start after the other's helper threads have gone
  // idle (CallTimer::SettleThenTime).
  for (size_t r = 0; r < rounds; ++r) {
    double tk, dn;
    if (r % 2) {
      dn = timer.SettleThenTime(*onednn);
      tk = timer.SettleThenTime(*tilekit_gemm);
    } else {
      tk = timer.SettleThenTime(*tilekit_gemm);
      dn = timer.SettleThenTime(*onednn);
    }
    double read_bw = 0;
    for (auto& reader : readers) read_bw = std::max(read_bw, reader->bytes() / timer.BestOf2(*reader));
    t_tk.push_back(tk);
    t_dnnl.push_back(dn);
    ratio.push_back(dn / tk);
    if (peak) {
      const double peak_flops = peak->flops() / timer.BestOf2(*peak);
      t_peak.push_back(peak_flops);
      peak_share.push_back(cli.flops() / tk / peak_flops);
    }
    if (!readers.empty()) {
      t_read.push_back(read_bw);
      bw_share.push_back(weight_bytes / tk / read_bw);
    }
  }
  for (const auto& [name, c, g] : {std::make_tuple("tilekit", &tk_case, tilekit_gemm.get()),
                                   std::make_tuple("oneDNN", &dnnl_case, onednn.get())}) {
    const std::string wrong = tilekit_bench::CheckSample(*c, ops, g->C(), g->ASeen(), g->BSeen());
    if (!wrong.empty()) {
      std::fprintf(stderr, "%s: %s\n", name, wrong.c_str());
      return 1;
    }
  }
  const double flops = cli.flops(), tk = Quantile(t_tk, 0.5), dn = Quantile(t_dnnl, 0.5);
  std::printf("%s M=%lld N=%lld K=%lld threads=%d copies=%zu rounds=%zu\n", dtype.c_str(),
              static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K), threads, copies,
              rounds);
  std::printf("  tilekit (%s): %.1f GFLOP/s, %.1f GB/s of weights (median)\n", tilekit_gemm->Detail().c_str(),
              flops / tk / 1e9, weight_bytes / tk / 1e9);
  const double dnnl_bytes = onednn->WeightBytes() > 0 ? onednn->WeightBytes() : static_cast<double>(weight_bytes);
  std::printf("  oneDNN (%s): %.1f GFLOP/s, %.1f GB/s of weights (median)\n", onednn->Detail().c_str(),
              flops / dn / 1e9, dnnl_bytes / dn / 1e9);
  std::printf("  tilekit / oneDNN speed, per round: median %.3fx, IQR [%.3f, %.3f]\n", Quantile(ratio, 0.5),
              Quantile(ratio, 0.25), Quantile(ratio, 0.75));
  if (peak) {
    std::printf("  compute ceiling (%s) on as many threads: %.1f GFLOP/s (median); tilekit's GFLOP/s / it, per round: "
                "median %.2f, IQR [%.2f, %.2f]\n",
                peak->name().c_str(), Quantile(t_peak, 0.5) / 1e9, Quantile(peak_share, 0.5),
                Quantile(peak_share, 0.25), Quantile(peak_share, 0.75));
  }
  if (readers.empty()) return 0;
  std::printf("  read ceiling over the same copies: %.1f GB/s (median); tilekit's weight stream / it, per round: "
              "median %.2f, IQR [%.2f, %.2f]\n",
              Quantile(t_read, 0.5) / 1e9, Quantile(bw_share, 0.5), Quantile(bw_share, 0.25),
              Quantile(bw_share, 0.75));
  return 0;
}
