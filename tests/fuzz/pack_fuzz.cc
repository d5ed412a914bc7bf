// pack_weights, pack_weights_gate_up and packed_weights_size from arbitrary
// bytes. The first byte drawn (the input's last) picks the decoder:
//
// fp32 / bf16 weights (RunDense; the inputs committed before quantized
// weights existed end in a 0 byte that picks it): 1-3 sources or a gate/up
// pair, [K][N] and [N][K] layouts, leading dimensions, K or N of 0, null
// sources, K and N mismatches, sizes whose byte count overflows size_t,
// packing on any path, with and without an executor. Checks: packed_weights_size
// and pack_weights agree (status, bytes); a refused call leaves the
// destination as it was; accepted weights have the active path's layout, the
// sources' K and N, and the same bytes whether packed by one thread or two;
// and (for small shapes) a GEMM of the identity reproduces every weight
// exactly: 1·w is exact and each sum has one term.
//
// Quantized weights and GGUF sources (RunQuantized): int8 / int4 (and fp32 /
// bf16, the targets of type mismatches) from fp32, bf16, GGUF Q8_0 and Q4_0
// sources, mixed in one call; group sizes good and bad (int4 with group 0);
// GGUF rows with K not a multiple of 32, rows shorter than their blocks
// (truncated), NaN / Inf block scales, blocks at odd addresses and odd row
// strides, GGUF rows along N; fp32 / bf16 sources misaligned, with NaN / Inf
// weights; type mismatches (Q8_0 into int4, GGUF into f32 or bf16); fp32 and
// bf16 sources in one call. Checks: accepted exactly when the documented rules
// accept (PlanRefuses); packed_weights_size agrees, except that only packing
// reads fp32 / bf16 values (a NaN weight is refused there); a refusal leaves
// the destination's bytes, size and type; one thread = two; the layout is
// packing_layout's; and unit rows (M = 1: the GEMV) read back every weight
// exactly as the documented rule gives it: q · s with s = max|w| / qmax per
// column and group (tests/quant_reference.h), or the block's d · q; the
// identity GEMM (M = K: the dequantized tiles) within one rounding of them. Huge K is the dense
// decoder's: a GGUF source of K near SIZE_MAX has its block scales read
// before its packed size is refused.
//
// PACK_FUZZ_TAGS=1 prints what each quantized input decoded to (the cases the
// seeds in tests/fuzz/corpus/pack_fuzz/ were picked for).
#include "fuzz.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "../quant_reference.h"

namespace tilekit {
namespace {

struct Source {
  size_t k, n, ld;
  bool nk, null;
  std::vector<float> data;
};

void RunDense(FuzzedDataProvider& in) {
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


// ---- quantized weights and GGUF sources ----------------------------------------

bool IsGguf(SourceType t) { return t == SourceType::kGgufQ8_0 || t == SourceType::kGgufQ4_0; }
bool KnownSource(SourceType t) { return t == SourceType::kF32 || t == SourceType::kBf16 || IsGguf(t); }

// One source of RunQuantized: its storage (the data pointer starts `offset`
// elements or bytes in), and the bad values it holds.
struct QuantSource {
  WeightSource w;
  std::vector<float> f32;
  std::vector<bf16> b16;
  std::vector<unsigned char> gguf;
  bool nonfinite_weight = false;  // a NaN / Inf fp32 or bf16 weight inside the matrix
  bool nonfinite_scale = false;   // a GGUF block with a NaN / Inf scale
};

float SourceValue(const WeightSource& w, size_t kk, size_t col) {
  const size_t at = w.layout == SourceLayout::kNK ? col * w.ld + kk : kk * w.ld + col;
  return w.type == SourceType::kBf16 ? bf16_to_f32(static_cast<const bf16*>(w.data)[at])
                                     : static_cast<const float*>(w.data)[at];
}

// A half scale: any finite value (zero and subnormals too), or with `bad`
// infinite or NaN.
uint16_t RandomScale(std::mt19937_64& rng, bool bad) {
  const uint16_t sign = static_cast<uint16_t>((rng() & 1) << 15), mant = static_cast<uint16_t>(rng() & 0x3FF);
  if (bad) return static_cast<uint16_t>(sign | 0x7C00 | (rng() & 1 ? mant : 0));
  return static_cast<uint16_t>(sign | (rng() % 31) << 10 | mant);
}

// The documented rules of pack_weights (gemm/packed_weights.h), applied to
// the sources as decoded: whether planning refuses them (what
// packed_weights_size answers too); *value_refusal: planning accepts, and
// packing then refuses a NaN or infinite weight to quantize.
bool PlanRefuses(const std::vector<QuantSource>& src, WeightType type, size_t group, bool gate_up,
                 bool* value_refusal) {
  *value_refusal = false;
  if (src.empty()) return true;
  const size_t k = src[0].w.k;
  const bool quantized = is_quantized(type);
  for (const QuantSource& x : src) {
    const WeightSource& w = x.w;
    if (!KnownSource(w.type) || (!w.data && w.k && w.n) || w.k != k) return true;
    if (quantized && ((group != 0 && group != 32 && group != 64 && group != 128) ||
                      (group == 0 && type == WeightType::kInt4))) {
      return true;
    }
    if (!IsGguf(w.type)) {
      if (w.ld < (w.layout == SourceLayout::kNK ? w.k : w.n)) return true;
      *value_refusal |= quantized && x.nonfinite_weight;
    } else {
      const bool q8 = w.type == SourceType::kGgufQ8_0;
      if (type != (q8 ? WeightType::kInt8 : WeightType::kInt4) || group != 32 || w.layout != SourceLayout::kNK ||
          w.k % 32 || w.ld < w.k / 32 * gguf_block_bytes(w.type) || x.nonfinite_scale) {
        return true;
      }
    }
    // fp32 and bf16 weights: one element type per call (the quantized packer
    // reads each source as its own type).
    if (!quantized && w.type != src[0].w.type) return true;
  }
  return gate_up && src[0].w.n != src[1].w.n;
}

void RunQuantized(FuzzedDataProvider& in) {
  std::string tags;
  const auto tag = [&tags](const std::string& t) { tags += ' ' + t; };
  const Isa path = fuzz::PickPath(in);
  fuzz::Force(path);
  const int t = in.ConsumeIntegralInRange<int>(0, 7);
  const WeightType type = t < 3   ? WeightType::kInt8
                          : t < 6 ? WeightType::kInt4
                                  : t == 6 ? WeightType::kF32 : WeightType::kBf16;
  size_t group = fuzz::Pick<size_t>(in, {32, 32, 64, 128, 0});
  if (in.ConsumeIntegralInRange<int>(0, 15) == 0) group = fuzz::Pick<size_t>(in, {1, 16, 31, 33, 48, 96, 256, SIZE_MAX});
  const bool gate_up = in.ConsumeIntegralInRange<int>(0, 3) == 0;
  const size_t count = gate_up ? 2 : in.ConsumeIntegralInRange<size_t>(0, 3);
  const PackKind kind = gate_up ? PackKind::kGateUp : PackKind::kSeparate;
  // One source type per call mostly; now and then each its own.
  const SourceType kTypes[] = {SourceType::kF32, SourceType::kBf16, SourceType::kGgufQ8_0, SourceType::kGgufQ4_0};
  const SourceType main_type = kTypes[in.ConsumeIntegralInRange<size_t>(0, 3)];
  const bool mixed = in.ConsumeIntegralInRange<int>(0, 5) == 0;
  // K: whole GGUF blocks mostly, any size now and then.
  const size_t k0 = in.ConsumeBool() ? 32 * in.ConsumeIntegralInRange<size_t>(0, 5) : fuzz::Dim(in, 160);
  const uint64_t seed = in.ConsumeIntegral<uint64_t>();
  fuzz::Values values(seed);
  std::mt19937_64 random_bytes(seed ^ 0x2545F4914F6CDD1Dull);
  tag(std::string(weight_type_name(type)) + " group " + std::to_string(group) + (gate_up ? " gate_up" : "") +
      " sources " + std::to_string(count) + " K " + std::to_string(k0));

  std::vector<QuantSource> src(count);
  for (size_t s = 0; s < count; ++s) {
    QuantSource& x = src[s];
    WeightSource& w = x.w;
    w.type = mixed ? kTypes[in.ConsumeIntegralInRange<size_t>(0, 3)] : main_type;
    w.k = k0;
    w.n = gate_up && s == 1 ? src[0].w.n : fuzz::Dim(in, 60);
    const int bad = in.ConsumeIntegralInRange<int>(0, 19);
    if (bad == 1) w.k = k0 + 1 + (s == 0), tag("K-mismatch");   // with several sources
    if (bad == 2 && gate_up && s == 1) w.n += 1, tag("gate-up-N");
    const size_t offset = in.ConsumeIntegralInRange<size_t>(0, 3);  // misaligned data
    const size_t pad = in.ConsumeIntegralInRange<size_t>(0, 3);     // odd strides
    tag(std::string(source_type_name(w.type)) + " N " + std::to_string(w.n) + " offset " + std::to_string(offset) +
        " pad " + std::to_string(pad));
    if (IsGguf(w.type)) {
      w.layout = bad == 3 ? SourceLayout::kKN : SourceLayout::kNK;
      if (bad == 3) tag("gguf-along-N");
      const size_t row = w.k / 32 * gguf_block_bytes(w.type);
      w.ld = row + pad;
      if (bad == 5 && row > 0) {  // rows shorter than their blocks
        w.ld = row - 1 - in.ConsumeIntegralInRange<size_t>(0, std::min<size_t>(row - 1, 40));
        tag("gguf-truncated-rows");
      }
      if (w.k % 32) tag("gguf-K-not-32s");
      x.gguf.resize(offset + w.n * std::max(w.ld, row) + 1);
      for (unsigned char& b : x.gguf) b = static_cast<unsigned char>(random_bytes());
      unsigned char* rows = x.gguf.data() + offset;
      const size_t blocks = w.k / 32, block = gguf_block_bytes(w.type);
      if (w.ld >= row) {
        for (size_t r = 0; r < w.n; ++r) {
          for (size_t b = 0; b < blocks; ++b) {
            const uint16_t d = RandomScale(random_bytes, false);
            std::memcpy(rows + r * w.ld + b * block, &d, 2);
          }
        }
      }
      if (bad == 6 && w.n && blocks && w.ld >= row) {  // one block's scale NaN or infinite
        const size_t r = in.ConsumeIntegralInRange<size_t>(0, w.n - 1), b = in.ConsumeIntegralInRange<size_t>(0, blocks - 1);
        const uint16_t d = RandomScale(random_bytes, true);
        std::memcpy(rows + r * w.ld + b * block, &d, 2);
        x.nonfinite_scale = true;
        tag("gguf-nonfinite-scale");
      }
      w.data = rows;
    } else {
      w.layout = in.ConsumeBool() ? SourceLayout::kNK : SourceLayout::kKN;
      const size_t cols = w.layout == SourceLayout::kNK ? w.k : w.n, rows = w.layout == SourceLayout::kNK ? w.n : w.k;
      w.ld = cols + pad;
      if (bad == 0 && cols > 0) w.ld = cols - 1, tag("ld<cols");
      std::vector<float> v(offset + rows * std::max(w.ld, cols) + 1);
      values.fill(v);
      if (bad == 6 && w.k && w.n) {  // a NaN or infinite weight
        const size_t kk = in.ConsumeIntegralInRange<size_t>(0, w.k - 1), c = in.ConsumeIntegralInRange<size_t>(0, w.n - 1);
        const float bad_value = fuzz::Pick<float>(in, {NAN, INFINITY, -INFINITY});
        v[offset + (w.layout == SourceLayout::kNK ? c * w.ld + kk : kk * w.ld + c)] = bad_value;
        x.nonfinite_weight = true;
        tag("nonfinite-weight");
      }
      if (w.type == SourceType::kBf16) {
        for (float f : v) x.b16.push_back(f32_to_bf16(f));
        w.data = x.b16.data() + offset;
      } else {
        x.f32 = std::move(v);
        w.data = x.f32.data() + offset;
      }
    }
    if (bad == 4) w.data = nullptr, tag("null");
    if (bad == 7) w.type = static_cast<SourceType>(4 + in.ConsumeIntegralInRange<int>(0, 250)), tag("unknown-source-type");
  }
  bool mixed_f32_bf16 = false;
  for (const QuantSource& x : src) {
    mixed_f32_bf16 |= KnownSource(x.w.type) && !IsGguf(x.w.type) && !IsGguf(src[0].w.type) && x.w.type != src[0].w.type;
  }
  if (mixed_f32_bf16) tag("mixed-f32-bf16");
  bool value_refusal = false;
  const bool plan_refuses = PlanRefuses(src, type, group, gate_up, &value_refusal);
  if (std::getenv("PACK_FUZZ_TAGS")) {
    std::fprintf(stderr, "pack_fuzz:%s -> %s\n", tags.c_str(),
                 plan_refuses ? "refused" : value_refusal ? "refused when packing" : "accepted");
  }
  std::vector<WeightSource> ws;
  for (const QuantSource& x : src) ws.push_back(x.w);

  // The destination holds weights already (fp32, or int4 in groups of 32): a
  // refused call must keep their bytes, size and type.
  std::vector<float> old_w(40 * 8, 0.25f);
  PackedWeights pw;
  const WeightType old_type = in.ConsumeBool() ? WeightType::kInt4 : WeightType::kF32;
  TILEKIT_FUZZ_CHECK(pack_weights(weights_nk(old_w.data(), 8, 40), old_type, &pw) == Status::kOk, "seed pack");
  const fuzz::Snapshot old_bytes(pw.panel(0), pw.bytes());
  const size_t old_size = pw.bytes();

  static ThreadPool pool(2);
  PackOptions opt;
  opt.group = group;
  opt.executor = in.ConsumeBool() ? &pool : nullptr;
  size_t predicted = 0;
  const Status ps = packed_weights_size(ws.data(), count, type, kind, &predicted, opt);
  const Status s = pack_weights(ws.data(), count, type, kind, &pw, opt);
  TILEKIT_FUZZ_CHECK((ps == Status::kOk) == !plan_refuses, "packed_weights_size %s, the rules %s (%s)",
                     status_name(ps), plan_refuses ? "refuse" : "accept", tags.c_str());
  TILEKIT_FUZZ_CHECK((s == Status::kOk) == !(plan_refuses || value_refusal), "pack_weights %s, the rules %s (%s)",
                     status_name(s), plan_refuses || value_refusal ? "refuse" : "accept", tags.c_str());
  TILEKIT_FUZZ_CHECK(plan_refuses || value_refusal || s == ps, "pack_weights %s, packed_weights_size %s",
                     status_name(s), status_name(ps));
  if (s != Status::kOk) {
    TILEKIT_FUZZ_CHECK(pw.bytes() == old_size && old_bytes.unchanged() && pw.type() == old_type,
                       "refused pack (%s) changed the destination (%s)", status_name(s), tags.c_str());
    return;
  }
  TILEKIT_FUZZ_CHECK(predicted == pw.bytes(), "predicted %zu bytes, packed %zu", predicted, pw.bytes());
  const size_t k = src[0].w.k;
  size_t n_total = 0;
  for (size_t i = 0; i < (gate_up ? 1 : count); ++i) n_total += src[i].w.n;
  TILEKIT_FUZZ_CHECK(pw.k() == k && pw.n() == n_total && pw.type() == type && pw.packed_for() == path,
                     "K=%zu N=%zu (want %zu, %zu)", pw.k(), pw.n(), k, n_total);
  PanelLayout layout;
  TILEKIT_FUZZ_CHECK(packing_layout(ws.data(), count, type, kind, opt, &layout) == Status::kOk && pw.layout() == layout,
                     "layout");
  TILEKIT_FUZZ_CHECK(!is_quantized(type) || pw.group() == testing::GroupOf(group, k), "group %zu, asked %zu",
                     pw.group(), group);

  PackedWeights again;
  opt.executor = opt.executor ? nullptr : &pool;
  TILEKIT_FUZZ_CHECK(pack_weights(ws.data(), count, type, kind, &again, opt) == Status::kOk, "repack");
  TILEKIT_FUZZ_CHECK(again.bytes() == pw.bytes() && (pw.bytes() == 0 || std::memcmp(again.panel(0), pw.panel(0), pw.bytes()) == 0),
                     "packing with %s executor gave other bytes", opt.executor ? "an" : "no");

  // The weights as the rules give them, [K][N] (gate/up needs SwiGLU to be
  // read: not here; fp32 / bf16 weights holding a NaN spread it through the
  // identity's zero products).
  bool nonfinite = false;
  for (const QuantSource& x : src) nonfinite |= x.nonfinite_weight;
  if (gate_up || nonfinite || k == 0 || n_total == 0) return;
  // want: q · s (or the fp32 / bf16 weight); mag: (|q| + 2z) · |s|, what
  // the dequantization's roundings scale with (0: fp32 / bf16 weights).
  std::vector<float> want(k * n_total), mag(k * n_total, 0.f);
  const double z = is_quantized(type) ? testing::Zero(type) : 0;
  size_t col0 = 0;
  for (const QuantSource& x : src) {
    const WeightSource& w = x.w;
    std::vector<float> kn(k * w.n), kn_mag(k * w.n, 0.f);
    for (size_t kk = 0; kk < k; ++kk) {
      for (size_t j = 0; j < w.n; ++j) {
        float& v = kn[kk * w.n + j];
        if (IsGguf(w.type)) {
          uint16_t d;
          int q;
          testing::GgufBlockValue(static_cast<const unsigned char*>(w.data), w.type, w.ld, j, kk, &d, &q);
          v = static_cast<float>(testing::HalfValue(d) * q);  // exact: 11 × 8 significant bits
          kn_mag[kk * w.n + j] = static_cast<float>((std::abs(q) + 2 * z) * std::fabs(testing::HalfValue(d)));
        } else {
          v = SourceValue(w, kk, j);
          if (type == WeightType::kBf16) v = bf16_to_f32(f32_to_bf16(v));
        }
      }
    }
    if (is_quantized(type) && !IsGguf(w.type)) {
      testing::Dequantized d = testing::Quantize(kn.data(), k, w.n, SourceLayout::kKN, type, group);
      kn = std::move(d.w);
      kn_mag = std::move(d.mag);
    }
    for (size_t kk = 0; kk < k; ++kk) {
      std::copy_n(kn.data() + kk * w.n, w.n, want.data() + kk * n_total + col0);
      std::copy_n(kn_mag.data() + kk * w.n, w.n, mag.data() + kk * n_total + col0);
    }
    col0 += w.n;
  }
  // A unit row of A reads one row of weights on the GEMV (M = 1): 1 · (u - z)
  // summed with zeros, times s, is q · s exactly, every row in turn. The
  // identity (M = K) reads them all from the dequantized K blocks, where
  // (u - z) · s is one MulSub, u · s - z · s: exact where it is fused, one
  // rounding of u · s (within u · (|q| + 2z) · |s|) where it is not (the
  // scalar path). Products with the zeros of A are zeros (compared as values:
  // either sign).
  std::vector<float> eye(k * k, 0.f), c(k * n_total), row(n_total);
  for (size_t i = 0; i < k; ++i) eye[i * k + i] = 1.f;
  TILEKIT_FUZZ_CHECK(gemm(matrix(static_cast<const float*>(eye.data()), k, k), pw, matrix(c.data(), k, n_total)) ==
                         Status::kOk,
                     "identity gemm");
  for (size_t kk = 0; kk < k; ++kk) {
    TILEKIT_FUZZ_CHECK(gemm(matrix(static_cast<const float*>(eye.data() + kk * k), 1, k), pw,
                            matrix(row.data(), 1, n_total)) == Status::kOk,
                       "unit row gemm");
    for (size_t j = 0; j < n_total; ++j) {
      const float w = want[kk * n_total + j], got = c[kk * n_total + j];
      TILEKIT_FUZZ_CHECK(row[j] == w, "unit row %zu, column %zu: %.9g, the rule gives %.9g (%s)", kk, j, row[j], w,
                         tags.c_str());
      TILEKIT_FUZZ_CHECK(std::fabs(static_cast<double>(got) - w) <= testing::kF32Eps * mag[kk * n_total + j],
                         "W[%zu][%zu] read by the identity as %.9g, the rule gives %.9g (%s)", kk, j, got, w,
                         tags.c_str());
    }
  }
}

void Run(FuzzedDataProvider& in) {
  if (in.ConsumeBool()) {
    RunQuantized(in);
  } else {
    RunDense(in);
  }
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)
