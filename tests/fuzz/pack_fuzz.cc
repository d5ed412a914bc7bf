// pack_weights, pack_weights_gate_up and packed_weights_size from arbitrary
// bytes: 1-3 sources or a gate/up pair, [K][N] and [N][K] layouts, leading
// dimensions, K or N of 0, null sources, K and N mismatches, sizes whose byte
// count overflows size_t, packing on any path, with and without an executor.
//
// Checks: packed_weights_size and pack_weights agree (status, bytes); a
// refused call leaves the destination as it was; accepted weights have the
// active path's layout, the sources' K and N, and the same bytes whether
// packed by one thread or two; and (for small shapes) a GEMM of the identity
// reproduces every weight exactly: 1·w is exact and each sum has one term.
#include "fuzz.h"

namespace tilekit {
namespace {

struct Source {
  size_t k, n, ld;
  bool nk, null;
  std::vector<float> data;
};

void Run(FuzzedDataProvider& in) {
  const Isa path = fuzz::PickPath(in);
  fuzz::Force(path);
  const WeightType type = in.ConsumeBool() ? WeightType::kBf16 : WeightType::kF32;
  const bool gate_up = in.ConsumeIntegralInRange<int>(0, 3) == 0;
  const size_t count = gate_up ? 2 : in.ConsumeIntegralInRange<size_t>(0, 3);
  const PackKind kind = gate_up ? PackKind::kGateUp : PackKind::kSeparate;
  const size_t k0 = fuzz::Dim(in, 80);
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());
  // Bad sources are expected to be refused before a byte is read.
  bool must_fail = count == 0, huge_k = false;
  std::vector<Source> src(count);
  std::vector<WeightSource> ws(count);
  for (size_t s = 0; s < count; ++s) {
    Source& x = src[s];
    x.k = k0;
    x.n = gate_up && s == 1 ? src[0].n : fuzz::Dim(in, 60);
    x.nk = in.ConsumeBool();
    const int bad = in.ConsumeIntegralInRange<int>(0, 15);
    if (bad == 2) x.k = k0 + 1 + (s == 0);                      // K mismatch (with several sources)
    if (bad == 3 && gate_up && s == 1) x.n += 1;               // gate N != up N
    if (bad == 4) x.k = fuzz::HugeDim(in), huge_k = true;      // packed bytes overflow size_t (if N > 0)
    const size_t cols = x.nk ? x.k : x.n, rows = x.nk ? x.n : x.k;
    const size_t pad = in.ConsumeIntegralInRange<size_t>(0, 2);
    x.ld = cols > SIZE_MAX - pad ? cols : cols + pad;
    if (bad == 0 && cols > 0) x.ld = cols - 1, must_fail = true;  // ld < cols
    if (bad == 1) x.null = true, must_fail |= x.k && x.n;         // null data
    if (!x.null && x.k < 1000) {
      x.data.resize(rows * x.ld + 1);
      values.fill(x.data);
    }
    ws[s] = WeightSource{x.null || x.data.empty() ? nullptr : x.data.data(), x.k, x.n, x.ld,
                         x.nk ? SourceLayout::kNK : SourceLayout::kKN};
  }
  if (count > 1 && !gate_up) {
    for (size_t s = 1; s < count; ++s) must_fail |= src[s].k != src[0].k;
  }
  if (gate_up) must_fail |= src[0].k != src[1].k || src[0].n != src[1].n;
  // A huge K with any column: the packed bytes overflow (with N = 0 there is
  // nothing to pack, and 0 bytes is a valid answer).
  bool any_n = false;
  for (const Source& x : src) any_n |= x.n > 0;
  must_fail |= huge_k && any_n;
  // K near SIZE_MAX without columns: 0 bytes, or refused because K padded to
  // the layout's alignment would wrap. Either answer is right.
  const bool either = huge_k && !any_n;

  // The destination holds weights already: a refused call must keep them.
  std::vector<float> old_w(4 * 3, 0.5f);
  PackedWeights pw;
  TILEKIT_FUZZ_CHECK(pack_weights(weights_kn(old_w.data(), 4, 3), WeightType::kF32, &pw) == Status::kOk, "seed pack");
  const fuzz::Snapshot old_bytes(pw.panel(0), pw.bytes());
  const size_t old_size = pw.bytes();

  size_t predicted = 0;
  const Status ps = packed_weights_size(ws.data(), count, type, kind, &predicted);
  static ThreadPool pool(2);
  PackOptions opt;
  opt.executor = in.ConsumeBool() ? &pool : nullptr;
  const Status s = pack_weights(ws.data(), count, type, kind, &pw, opt);
  TILEKIT_FUZZ_CHECK(s == ps, "pack_weights %s, packed_weights_size %s", status_name(s), status_name(ps));
  if (s != Status::kOk) {
    TILEKIT_FUZZ_CHECK(must_fail || either, "valid sources refused: %s", status_name(s));
    TILEKIT_FUZZ_CHECK(pw.bytes() == old_size && old_bytes.unchanged(), "refused pack (%s) changed the destination",
                       status_name(s));
    return;
  }
  TILEKIT_FUZZ_CHECK(!must_fail, "bad sources accepted");
  TILEKIT_FUZZ_CHECK(predicted == pw.bytes(), "predicted %zu bytes, packed %zu", predicted, pw.bytes());
  size_t n_total = 0;
  for (size_t i = 0; i < (gate_up ? 1 : count); ++i) n_total += src[i].n;
  const size_t k_packed = src[0].k;
  TILEKIT_FUZZ_CHECK(pw.k() == k_packed && pw.n() == n_total && pw.type() == type && pw.packed_for() == path,
                     "K=%zu N=%zu (want %zu, %zu)", pw.k(), pw.n(), k_packed, n_total);
  TILEKIT_FUZZ_CHECK(pw.layout() == packing_layout(type, n_total, gate_up ? 1 : count, kind), "layout");
  TILEKIT_FUZZ_CHECK(pw.segments().size() == (gate_up ? 1 : count), "segments");

  // One thread and two give the same bytes.
  PackedWeights again;
  opt.executor = opt.executor ? nullptr : &pool;
  TILEKIT_FUZZ_CHECK(pack_weights(ws.data(), count, type, kind, &again, opt) == Status::kOk, "repack");
  TILEKIT_FUZZ_CHECK(again.bytes() == pw.bytes() && (pw.bytes() == 0 || std::memcmp(again.panel(0), pw.panel(0), pw.bytes()) == 0),
                     "packing with %s executor gave other bytes", opt.executor ? "an" : "no");

  // The identity GEMM reads every weight back: C = I·W = W (gate/up: needs
  // SwiGLU, so only plain weights).
  if (gate_up || k_packed == 0 || n_total == 0 || k_packed > 48) return;
  const size_t k = k_packed;
  std::vector<float> eye(k * k, 0.f), c(k * n_total);
  for (size_t i = 0; i < k; ++i) eye[i * k + i] = 1.f;
  TILEKIT_FUZZ_CHECK(gemm(matrix(static_cast<const float*>(eye.data()), k, k), pw, matrix(c.data(), k, n_total)) ==
                         Status::kOk,
                     "identity gemm");
  for (size_t kk = 0; kk < k; ++kk) {
    size_t col = 0;
    for (size_t sidx = 0; sidx < count; ++sidx) {
      const Source& x = src[sidx];
      for (size_t j = 0; j < x.n; ++j, ++col) {
        float w = x.nk ? x.data[j * x.ld + kk] : x.data[kk * x.ld + j];
        if (type == WeightType::kBf16) w = bf16_to_f32(f32_to_bf16(w));
        const float got = c[kk * n_total + col];
        TILEKIT_FUZZ_CHECK(std::memcmp(&got, &w, 4) == 0, "W[%zu][%zu] of source %zu packed as %.9g, was %.9g", kk, j,
                           sidx, got, w);
      }
    }
  }
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)
