// The row ops from arbitrary bytes, one call per input on the path it picks:
//  - rms_norm and add_rms_norm, every fp32/bf16 x/y pair: tokens × heads ×
//    head_dim (0, 1, tails) with gaps between heads and tokens, eps edges
//    (0, -0, denormal, 1e30, Inf; negative and NaN refused), weight offset,
//    both bf16 rounding orders; y in place, or y / the residual / the weight
//    placed anywhere near another operand of the same buffer;
//  - make_rope_table and rope_inv_freq with every pairing, scaling and option
//    (valid and not: odd or too large rotary_dim, theta <= 1, factor <= 0,
//    missing original_max_positions, ...), tables up to 65,536 positions; rope
//    on fp32 and bf16 Q/K as slices of one fused QKV row or separate buffers,
//    positions anywhere in the table (and outside it: refused);
//  - softmax with scale edges, a mask (own ld, with -Inf entries, fully
//    masked rows, or the input itself), NaN / +Inf / -Inf elements, y in
//    place or placed anywhere near x, the mask near y;
// and one corruption of the call: null pointers, ld or strides below the row,
// shape mismatches, sizes whose bytes overflow size_t, empty tables.
//
// Differential: every output element against the fp64 references of
// tests/ops_reference.h with the bound of its arithmetic (the residual of
// add_rms_norm bit for bit); every byte of every buffer that is not an output
// element (padding between rows and heads, RoPE's pass-through part, the
// neighbours of shifted views) unchanged. A refused call leaves every byte as
// it was; two views that share an element must be refused, views apart must
// be accepted.
#include <limits>
#include <type_traits>

#include "../ops_reference.h"
#include "fuzz.h"

namespace tilekit {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

ThreadPool& Pool() {
  static ThreadPool pool(2);
  return pool;
}

template <typename T, typename Fn>
void ForEachElement(const HeadsView<T>& v, Fn fn) {
  for (size_t t = 0; t < v.tokens; ++t)
    for (size_t h = 0; h < v.heads; ++h)
      for (size_t i = 0; i < v.head_dim; ++i) fn(t, h, i, v.data + t * v.token_stride + h * v.head_stride + i);
}

// Elements in a buffer with gaps: `pad` elements of room on both sides of a
// view of `span` elements, so another view can be shifted across it.
struct Layout {
  size_t tokens, heads, dim, head_stride, token_stride, span, pad;
  Layout(size_t t, size_t h, size_t d, size_t head_gap, size_t token_gap)
      : tokens(t), heads(h), dim(d), head_stride(d + head_gap), token_stride(h * (d + head_gap) + token_gap) {
    span = t && h && d ? (t - 1) * token_stride + (h - 1) * head_stride + d : 0;
    pad = token_stride + 2;
  }
  size_t buffer() const { return span + 2 * pad; }
  template <typename T>
  HeadsView<T> at(T* buffer, ptrdiff_t shift = 0) const {
    return HeadsView<T>{buffer + pad + shift, tokens, heads, dim, token_stride, head_stride};
  }
  ptrdiff_t shift(FuzzedDataProvider& in) const {
    return in.ConsumeIntegralInRange<ptrdiff_t>(-static_cast<ptrdiff_t>(pad), static_cast<ptrdiff_t>(pad));
  }
};

template <typename T>
void Fill(std::vector<T>& v, fuzz::Values& values) {
  for (T& x : v) x = testing::FromF32<T>(values.next());
}

// One buffer of a call: its bytes before, and which of them the call may
// change (the elements of its outputs).
class Region {
 public:
  template <typename T>
  explicit Region(std::vector<T>& v)
      : begin_(reinterpret_cast<uintptr_t>(v.data())),
        before_(reinterpret_cast<const unsigned char*>(v.data()),
                reinterpret_cast<const unsigned char*>(v.data()) + v.size() * sizeof(T)),
        writable_(before_.size(), 0) {}
  template <typename T>
  void allow(const T* p) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(p);
    if (at < begin_ || at - begin_ + sizeof(T) > before_.size()) return;
    std::fill_n(writable_.begin() + (at - begin_), sizeof(T), 1);
  }
  // The first byte changed that no output covers (any byte when `refused`), or -1.
  long stray(bool refused) const {
    const auto* now = reinterpret_cast<const unsigned char*>(begin_);
    for (size_t b = 0; b < before_.size(); ++b)
      if (now[b] != before_[b] && (refused || !writable_[b])) return static_cast<long>(b);
    return -1;
  }

 private:
  uintptr_t begin_;
  std::vector<unsigned char> before_;
  std::vector<char> writable_;
};

void CheckUntouched(const std::vector<Region*>& regions, bool refused, const char* what) {
  for (size_t r = 0; r < regions.size(); ++r) {
    const long b = regions[r]->stray(refused);
    TILEKIT_FUZZ_CHECK(b < 0, "%s: %s byte %ld of buffer %zu", what, refused ? "refused call wrote" : "wrote outside its outputs",
                       b, r);
  }
}

// How two views of a call relate. kShare: an element in common (the call
// must be refused). kApart: spans apart, or slices with the same token stride
// in bytes each within the other's gap (the K-in, V-out case the headers
// promise to accept). kInterleaved: no element in common but neither of
// those; the checks may refuse it (they judge such views on their spans).
enum class Relation { kShare, kApart, kInterleaved };

template <typename A, typename B>
Relation Relate(const HeadsView<A>& a, const HeadsView<B>& b) {
  if (!a.tokens || !a.heads || !a.head_dim || !b.tokens || !b.heads || !b.head_dim) return Relation::kApart;
  std::vector<std::pair<uintptr_t, uintptr_t>> bytes_of_a;  // [begin, end) per element
  uintptr_t a_lo = UINTPTR_MAX, a_hi = 0, b_lo = UINTPTR_MAX, b_hi = 0;
  ForEachElement(a, [&](size_t, size_t, size_t, const A* p) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(p);
    bytes_of_a.emplace_back(at, at + sizeof(A));
    a_lo = std::min(a_lo, at), a_hi = std::max(a_hi, at + sizeof(A));
  });
  std::sort(bytes_of_a.begin(), bytes_of_a.end());
  bool share = false;
  ForEachElement(b, [&](size_t, size_t, size_t, const B* p) {
    const uintptr_t at = reinterpret_cast<uintptr_t>(p);
    b_lo = std::min(b_lo, at), b_hi = std::max(b_hi, at + sizeof(B));
    auto next = std::upper_bound(bytes_of_a.begin(), bytes_of_a.end(), std::make_pair(at, UINTPTR_MAX));
    if (next != bytes_of_a.end() && next->first < at + sizeof(B)) share = true;
    if (next != bytes_of_a.begin() && std::prev(next)->second > at) share = true;
  });
  if (share) return Relation::kShare;
  if (a_hi <= b_lo || b_hi <= a_lo) return Relation::kApart;
  const size_t period = a.token_stride * sizeof(A);
  if (a.tokens >= 2 && b.tokens >= 2 && period == b.token_stride * sizeof(B)) {
    const uintptr_t pa = reinterpret_cast<uintptr_t>(a.data), pb = reinterpret_cast<uintptr_t>(b.data);
    const size_t offset = pb >= pa ? (pb - pa) % period : (period - (pa - pb) % period) % period;
    const size_t a_extent = ((a.heads - 1) * a.head_stride + a.head_dim) * sizeof(A);
    const size_t b_extent = ((b.heads - 1) * b.head_stride + b.head_dim) * sizeof(B);
    if (a_extent <= offset && offset + b_extent <= period) return Relation::kApart;
  }
  return Relation::kInterleaved;
}

// What the checks must decide: refuse (a corruption or two operands sharing
// an element), accept, or either (views the checks may judge conservatively).
struct Expect {
  bool must_fail = false, may_fail = false;
  void relation(Relation r) {
    must_fail |= r == Relation::kShare;
    may_fail |= r == Relation::kInterleaved;
  }
  // Checks the status; true when the call was accepted and its results are to be checked.
  bool accepted(Status s, const char* op, int corruption) const {
    if (must_fail) {
      TILEKIT_FUZZ_CHECK(s != Status::kOk, "%s: corruption %d (or overlap) accepted", op, corruption);
      return false;
    }
    TILEKIT_FUZZ_CHECK(s == Status::kOk || may_fail, "%s: valid call refused: %s", op, status_name(s));
    return s == Status::kOk;
  }
};

// y = x exactly: the in-place call the headers allow.
template <typename A, typename B>
bool SameView(const HeadsView<A>& a, const HeadsView<B>& b) {
  return sizeof(A) == sizeof(B) && static_cast<const void*>(a.data) == static_cast<const void*>(b.data) &&
         a.tokens == b.tokens && a.heads == b.heads && a.head_dim == b.head_dim &&
         a.token_stride == b.token_stride && a.head_stride == b.head_stride;
}

// ---------------------------------------------------------------- rms_norm

template <typename X, typename Y>
void RunNorm(FuzzedDataProvider& in, fuzz::Values& values) {
  const bool add = in.ConsumeBool();
  const char* op = add ? "add_rms_norm" : "rms_norm";
  const Layout lay(fuzz::Dim(in, 6), in.ConsumeIntegralInRange<size_t>(0, 4), fuzz::Dim(in, 150),
                   in.ConsumeIntegralInRange<size_t>(0, 3), in.ConsumeIntegralInRange<size_t>(0, 5));
  RmsNormOptions opt;
  opt.eps = fuzz::Pick(in, {1e-6f, 1e-5f, 0.f, -0.f, 0.5f, 1e30f, std::numeric_limits<float>::denorm_min(), kInf,
                            -1e-6f, kNan});
  opt.weight_offset = in.ConsumeBool();
  opt.rounding = in.ConsumeBool() ? Bf16Rounding::kBeforeWeight : Bf16Rounding::kAfterWeight;
  opt.executor = in.ConsumeBool() ? &Pool() : nullptr;
  const int placement = in.ConsumeIntegralInRange<int>(0, 7);  // 3-7: one of these, else apart
  const int corruption = in.ConsumeIntegralInRange<int>(0, 17);  // 0-8: one of these, else none

  std::vector<X> xb(lay.buffer()), rb(lay.buffer());
  std::vector<Y> yb(lay.buffer());
  std::vector<float> wb(lay.dim + 1);
  Fill(xb, values), Fill(rb, values), Fill(yb, values), Fill(wb, values);
  HeadsView<X> x = lay.at(xb.data()), residual = lay.at(rb.data());
  HeadsView<Y> y = lay.at(yb.data());
  const float* weight = wb.data();
  constexpr bool kSameType = std::is_same<X, Y>::value;
  if constexpr (kSameType) {
    if (placement == 3) y = x;                                          // in place
    if (placement == 4) y = lay.at(xb.data(), lay.shift(in));           // near x
    if (placement == 6 && add) residual = lay.at(yb.data(), lay.shift(in));  // near y
  }
  if (placement == 5 && add) residual = lay.at(xb.data(), lay.shift(in));  // near x
  if constexpr (std::is_same<Y, float>::value) {
    if (placement == 7 && yb.size() >= lay.dim) weight = yb.data() + in.ConsumeIntegralInRange<size_t>(0, yb.size() - lay.dim);
  }

  Expect expect;
  expect.must_fail = std::isnan(opt.eps) || opt.eps < 0.f || lay.dim == 0;
  const bool rows = lay.tokens && lay.heads;  // any row to compute
  if (rows && lay.dim) {
    if (!SameView(x, y)) expect.relation(Relate(x, y));
    if (add) expect.relation(Relate(residual, x)), expect.relation(Relate(residual, y));
    const HeadsView<const float> w = heads_view(weight, 1, 1, lay.dim);
    expect.relation(Relate(w, y));
    if (add) expect.relation(Relate(w, residual));
  }
  // Inputs as they were, gathered before the call may overwrite them.
  std::vector<float> x0, r0, w0(weight, weight + lay.dim);
  if (!expect.must_fail) {
    ForEachElement(x, [&](size_t, size_t, size_t, const X* p) { x0.push_back(testing::ToF32(*p)); });
    if (add) ForEachElement(residual, [&](size_t, size_t, size_t, const X* p) { r0.push_back(testing::ToF32(*p)); });
  }

  switch (corruption) {
    case 0: if (rows) x.data = nullptr, expect.must_fail = true; break;
    case 1: if (rows) y.data = nullptr, expect.must_fail = true; break;
    case 2: if (rows && add) residual.data = nullptr, expect.must_fail = true; break;
    case 3: if (rows && lay.dim) weight = nullptr, expect.must_fail = true; break;
    case 4: y.tokens += 1, expect.must_fail = true; break;
    case 5: if (add) residual.head_dim += 1, expect.must_fail = true; break;
    case 6: if (lay.heads >= 2 && lay.dim) x.head_stride = lay.dim - 1, expect.must_fail = true; break;
    case 7: if (lay.tokens >= 2 && lay.heads) y.token_stride = (lay.heads - 1) * y.head_stride + lay.dim - 1, expect.must_fail = true; break;
    case 8:  // bytes past size_t: (tokens - 1)·token_stride alone reaches SIZE_MAX / 4 · 4
      if (lay.heads && lay.dim) {
        const size_t huge = fuzz::HugeDim(in), stride = std::max<size_t>(lay.token_stride, 4);
        x.tokens = y.tokens = residual.tokens = huge;
        x.token_stride = y.token_stride = residual.token_stride = stride;
        expect.must_fail = true;
      }
      break;
    default: break;
  }
  Region rx(xb), rr(rb), ry(yb), rw(wb);
  const Status s = add ? add_rms_norm(HeadsView<const X>(x), residual, weight, y, opt)
                       : rms_norm(HeadsView<const X>(x), weight, y, opt);
  if (!expect.accepted(s, op, corruption)) {
    CheckUntouched({&rx, &rr, &ry, &rw}, true, op);
    return;
  }
  ForEachElement(y, [&](size_t, size_t, size_t, const Y* p) { ry.allow(p), rx.allow(p), rr.allow(p); });
  if (add) ForEachElement(residual, [&](size_t, size_t, size_t, const X* p) { rr.allow(p), rx.allow(p), ry.allow(p); });
  CheckUntouched({&rx, &rr, &ry, &rw}, false, op);

  const double rel = testing::RmsNormRelBound(lay.dim, kIsBf16<X>, kIsBf16<Y>, opt.rounding);
  std::vector<double> h(lay.dim);
  for (size_t t = 0, row = 0; t < lay.tokens; ++t) {
    for (size_t hd = 0; hd < lay.heads; ++hd, ++row) {
      double ss = 0;
      for (size_t i = 0; i < lay.dim; ++i) {
        const size_t e = row * lay.dim + i;
        if (add) {
          // h is stored in x's dtype: fp32 addition, then rounding, bit for bit.
          const X want = testing::FromF32<X>(x0[e] + r0[e]);
          const X got = residual.data[t * residual.token_stride + hd * residual.head_stride + i];
          TILEKIT_FUZZ_CHECK(testing::Bits(got) == testing::Bits(want), "residual[%zu][%zu][%zu] = %g, want %g", t, hd,
                             i, testing::ToF32(got), testing::ToF32(want));
          h[i] = testing::ToF32(want);
        } else {
          h[i] = x0[e];
        }
        ss += h[i] * h[i];
      }
      const double r = 1.0 / std::sqrt(ss / static_cast<double>(lay.dim) + opt.eps);
      for (size_t i = 0; i < lay.dim; ++i) {
        const double want = h[i] * r * (opt.weight_offset ? 1.0 + w0[i] : w0[i]);
        const double got = testing::ToF32(y.data[t * y.token_stride + hd * y.head_stride + i]);
        if (std::isnan(want)) {  // h = x + residual is all zeros and eps 0: 0 · (1 / 0), in IEEE as in fp64
          TILEKIT_FUZZ_CHECK(std::isnan(got), "%s y[%zu][%zu][%zu] = %g of a zero row with eps 0", op, t, hd, i, got);
          continue;
        }
        const double bound = rel * std::fabs(want) + 1e-30;
        TILEKIT_FUZZ_CHECK(std::fabs(got - want) <= bound, "%s y[%zu][%zu][%zu] = %.9g, want %.9g, bound %.3g (eps %g)",
                           op, t, hd, i, got, want, bound, opt.eps);
      }
    }
  }
}

// ---------------------------------------------------------------- rope

// The documented rules of make_rope_table (ops/rope.h), written out.
bool ConfigValid(const RopeConfig& c, size_t max_positions) {
  const size_t rot = c.rotary_dim ? c.rotary_dim : c.head_dim;
  if (c.head_dim == 0 || rot % 2 || rot > c.head_dim) return false;
  if (max_positions == 0 || max_positions > (size_t{1} << 31)) return false;
  if (!(c.theta > 1) || !std::isfinite(c.theta)) return false;
  if (c.scaling == RopeScaling::kNone) return true;
  if (!(c.factor > 0) || !std::isfinite(c.factor)) return false;
  if (c.scaling != RopeScaling::kLinear && c.original_max_positions == 0) return false;
  if (c.scaling == RopeScaling::kDynamicNtk && rot < 4) return false;  // exponent d / (d - 2)
  if (c.scaling == RopeScaling::kLlama3 && !(c.high_freq_factor > c.low_freq_factor && c.low_freq_factor > 0))
    return false;
  if (c.scaling == RopeScaling::kYarn && (!(c.beta_fast > 0 && c.beta_slow > 0) || c.attention_factor < 0))
    return false;
  return true;
}

// The library's inverse frequencies against the reference's (ops_reference.h).
constexpr double kInvFreqRel = testing::kRopeInvFreqRel;

template <typename T>
void RunRope(FuzzedDataProvider& in, fuzz::Values& values) {
  RopeConfig c;
  c.head_dim = fuzz::Dim(in, 130);
  switch (in.ConsumeIntegralInRange<int>(0, 5)) {
    case 0: c.rotary_dim = 0; break;  // head_dim
    case 1: c.rotary_dim = c.head_dim + 2; break;  // refused
    case 2: c.rotary_dim = 2 * in.ConsumeIntegralInRange<size_t>(0, 65) + 1; break;  // odd: refused
    default: c.rotary_dim = 2 * in.ConsumeIntegralInRange<size_t>(1, std::max<size_t>(c.head_dim / 2, 1)); break;
  }
  c.pairing = in.ConsumeBool() ? RopePairing::kInterleaved : RopePairing::kHalfSplit;
  c.theta = fuzz::Pick(in, {10000.0, 500000.0, 1e6, 1.5, 1e300, 1.0, 0.5, -1.0, double(kInf), double(kNan)});
  c.scaling = static_cast<RopeScaling>(in.ConsumeIntegralInRange<int>(0, 4));
  c.factor = fuzz::Pick(in, {1.0, 2.0, 4.0, 8.0, 0.5, 32.0, 0.0, -2.0, double(kInf)});
  c.original_max_positions = fuzz::Pick<size_t>(in, {0, 16, 64, 256, 4096});
  c.dynamic_seq_len = fuzz::Pick<size_t>(in, {0, 100, 5000});
  const int bands = in.ConsumeIntegralInRange<int>(0, 3);
  c.low_freq_factor = bands == 2 ? 4.0 : bands == 3 ? 0.0 : 1.0;
  c.high_freq_factor = bands == 1 ? 32.0 : bands == 2 ? 1.0 : 4.0;
  const int betas = in.ConsumeIntegralInRange<int>(0, 3);
  c.beta_fast = betas == 1 ? 16.0 : betas == 2 ? 1.0 : betas == 3 ? 0.0 : 32.0;
  c.beta_slow = betas == 1 ? 2.0 : betas == 2 ? 32.0 : 1.0;
  c.attention_factor = fuzz::Pick(in, {0.0, 0.0, 1.25, 0.5, -1.0});
  const size_t rot = c.rotary_dim ? c.rotary_dim : c.head_dim;
  // Many positions only with narrow tables (memory and time per input).
  const size_t max_positions = fuzz::Pick<size_t>(
      in, {0, 1, 2, fuzz::Dim(in, 300), fuzz::Dim(in, 300), rot <= 8 ? size_t{65536} : 4096, (size_t{1} << 31) + 1});
  const bool valid = ConfigValid(c, max_positions);

  // rope_inv_freq: the same validity; values against HF's formulas.
  std::vector<double> inv;
  double attention = -1;
  const bool null_out = in.ConsumeIntegralInRange<int>(0, 15) == 0;
  Status s = rope_inv_freq(c, max_positions, null_out ? nullptr : &inv, &attention);
  TILEKIT_FUZZ_CHECK((s == Status::kOk) == (valid && !null_out), "rope_inv_freq: %s for a %s config%s",
                     status_name(s), valid ? "valid" : "invalid", null_out ? " (null output)" : "");
  double ref_attention = 1;
  std::vector<double> ref_inv;
  if (valid) ref_inv = testing::RopeReferenceInvFreq(c, max_positions, &ref_attention);
  if (s == Status::kOk) {
    TILEKIT_FUZZ_CHECK(inv.size() == rot / 2 && std::fabs(attention - ref_attention) <= kInvFreqRel * ref_attention,
                       "rope_inv_freq: %zu values, attention %.17g, want %.17g", inv.size(), attention, ref_attention);
    for (size_t i = 0; i < inv.size(); ++i) {
      TILEKIT_FUZZ_CHECK(std::fabs(inv[i] - ref_inv[i]) <= kInvFreqRel * std::fabs(ref_inv[i]),
                         "inv_freq[%zu] = %.17g, want %.17g (scaling %d)", i, inv[i], ref_inv[i], int(c.scaling));
    }
  }

  // make_rope_table: refused leaves the table as it was (a built one).
  RopeTable table;
  RopeConfig small;
  small.head_dim = 4;
  TILEKIT_FUZZ_CHECK(make_rope_table(small, 3, &table) == Status::kOk, "make_rope_table of a small config");
  const std::vector<float> old_cos(table.cos_data(), table.cos_data() + 3 * table.width());
  const bool null_table = in.ConsumeIntegralInRange<int>(0, 15) == 0;
  s = make_rope_table(c, max_positions, null_table ? nullptr : &table);
  TILEKIT_FUZZ_CHECK((s == Status::kOk) == (valid && !null_table), "make_rope_table: %s for a %s config", status_name(s),
                     valid ? "valid" : "invalid");
  if (s != Status::kOk) {
    TILEKIT_FUZZ_CHECK(table.max_positions() == 3 && table.head_dim() == 4 &&
                           std::equal(old_cos.begin(), old_cos.end(), table.cos_data()),
                       "refused make_rope_table changed the table");
    return;
  }
  TILEKIT_FUZZ_CHECK(table.max_positions() == max_positions && table.head_dim() == c.head_dim &&
                         table.rotary_dim() == rot && table.pairing() == c.pairing,
                     "table: %zu positions, head_dim %zu, rotary %zu", table.max_positions(), table.head_dim(),
                     table.rotary_dim());

  // rope: Q and K as slices of one fused [tokens][q | k | v] row, or apart.
  const size_t tokens = fuzz::Dim(in, 6), q_heads = in.ConsumeIntegralInRange<size_t>(0, 4),
               k_heads = in.ConsumeIntegralInRange<size_t>(0, 3), hd = c.head_dim;
  const size_t head_gap = in.ConsumeIntegralInRange<size_t>(0, 2), hs = hd + head_gap;
  const size_t row = (q_heads + k_heads + 1) * hs + in.ConsumeIntegralInRange<size_t>(0, 3);
  const bool fused = in.ConsumeBool();
  const int corruption = in.ConsumeIntegralInRange<int>(0, 19);  // 0-10: one of these, else none
  const bool threads = in.ConsumeBool();
  std::vector<T> qb(tokens * row + 2 * row + 1), kb(fused ? 0 : tokens * row + 2 * row + 1);
  Fill(qb, values), Fill(kb, values);
  HeadsView<T> q{qb.data() + row, tokens, q_heads, hd, row, hs};
  HeadsView<T> k{(fused ? qb.data() + q_heads * hs : kb.data()) + row, tokens, k_heads, hd, row, hs};
  if (corruption == 0 && fused) k.data = q.data + in.ConsumeIntegralInRange<ptrdiff_t>(-ptrdiff_t(row), row);  // near q
  std::vector<int32_t> pos(tokens + 1);
  for (size_t t = 0; t < tokens; ++t) {
    pos[t] = static_cast<int32_t>(in.ConsumeBool() ? max_positions - 1 - in.ConsumeIntegralInRange<size_t>(0, 2) % max_positions
                                                   : in.ConsumeIntegralInRange<size_t>(0, max_positions - 1));
  }
  const int32_t* positions = pos.data();
  RopeTable empty;
  const RopeTable* use = &table;

  Expect expect;
  const bool has_k = tokens && k_heads;
  if (has_k && q_heads) expect.relation(Relate(q, k));
  std::vector<float> q0, k0;
  if (!expect.must_fail) {
    ForEachElement(q, [&](size_t, size_t, size_t, const T* p) { q0.push_back(testing::ToF32(*p)); });
    ForEachElement(k, [&](size_t, size_t, size_t, const T* p) { k0.push_back(testing::ToF32(*p)); });
  }
  switch (corruption) {
    case 1: if (tokens) pos[in.ConsumeIntegralInRange<size_t>(0, tokens - 1)] = fuzz::Pick<int32_t>(in, {-1, INT32_MIN, INT32_MAX, static_cast<int32_t>(std::min<size_t>(max_positions, INT32_MAX))}), expect.must_fail = true; break;
    case 2: if (tokens) positions = nullptr, expect.must_fail = true; break;
    case 3: if (tokens && q_heads) q.data = nullptr, expect.must_fail = true; break;
    case 4: use = &empty, expect.must_fail = true; break;
    case 5: q.head_dim += 1, expect.must_fail = true; break;
    case 6: if (has_k) k.head_dim -= 1, expect.must_fail = true; break;
    case 7: if (has_k) k.tokens += 1, expect.must_fail = true; break;
    case 8: if (tokens >= 2 && q_heads) q.token_stride = (q_heads - 1) * hs + hd - 1, expect.must_fail = true; break;
    case 9: if (k_heads >= 2 && has_k) k.head_stride = hd - 1, expect.must_fail = true; break;
    case 10:  // bytes past size_t (positions are checked after the views)
      if (q_heads) {
        q.tokens = k.tokens = fuzz::HugeDim(in);
        q.token_stride = k.token_stride = std::max<size_t>(row, 4);
        expect.must_fail = true;
      }
      break;
    default: break;
  }
  Region rq(qb), rk(kb);
  s = rope(q, k, positions, *use, threads ? &Pool() : nullptr);
  if (!expect.accepted(s, "rope", corruption)) {
    CheckUntouched({&rq, &rk}, true, "rope");
    return;
  }
  // Only the first rotary_dim elements of each head may change.
  const auto allow_rotated = [&](const HeadsView<T>& v) {
    ForEachElement(v, [&](size_t, size_t, size_t i, const T* p) {
      if (i < rot) rq.allow(p), rk.allow(p);
    });
  };
  allow_rotated(q);
  if (has_k) allow_rotated(k);
  CheckUntouched({&rq, &rk}, false, "rope");

  const bool interleaved = c.pairing == RopePairing::kInterleaved;
  const size_t half = rot / 2;
  const auto check = [&](const HeadsView<T>& v, const std::vector<float>& before, const char* name) {
    for (size_t t = 0; t < v.tokens; ++t) {
      for (size_t h = 0; h < v.heads; ++h) {
        const size_t base = (t * v.heads + h) * hd;
        for (size_t e = 0; e < rot; ++e) {
          const size_t f = interleaved ? e / 2 : e % half;
          const bool first = interleaved ? e % 2 == 0 : e < half;
          const size_t partner = interleaved ? (first ? e + 1 : e - 1) : (first ? e + half : e - half);
          const double angle = pos[t] * ref_inv[f];
          const testing::RopeElement want = testing::RopeElementRef(
              before[base + e], before[base + partner], std::cos(angle) * ref_attention,
              std::sin(angle) * ref_attention, first, kIsBf16<T>, angle * kInvFreqRel * ref_attention);
          const double got = testing::ToF32(v.data[t * v.token_stride + h * v.head_stride + e]);
          TILEKIT_FUZZ_CHECK(std::fabs(got - want.ref) <= want.bound,
                             "rope %s[%zu][%zu][%zu] = %.9g at position %d, want %.9g, bound %.3g (pairing %d, "
                             "scaling %d, rotary %zu of %zu)",
                             name, t, h, e, got, pos[t], want.ref, want.bound, int(c.pairing), int(c.scaling), rot, hd);
        }
      }
    }
  };
  check(q, q0, "q");
  if (has_k) check(k, k0, "k");
}

// ---------------------------------------------------------------- softmax

void RunSoftmax(FuzzedDataProvider& in, fuzz::Values& values) {
  const size_t rows = fuzz::Dim(in, 8), cols = fuzz::Dim(in, in.ConsumeIntegralInRange<int>(0, 7) ? 150 : 1100);
  const size_t x_ld = cols + in.ConsumeIntegralInRange<size_t>(0, 3);
  const Layout lay(rows, 1, cols, 0, x_ld - cols);  // rows as one-head tokens
  SoftmaxOptions opt;
  opt.scale = fuzz::Pick(in, {1.f, 0.125f, -1.f, 0.f, -0.f, 30.f, 1e-3f, kInf, -kInf, kNan});
  opt.executor = in.ConsumeBool() ? &Pool() : nullptr;
  const int mask_kind = in.ConsumeIntegralInRange<int>(0, 4);   // 0 none, 1-2 own, 3 x itself, 4 near y (if apart from x)
  const int y_kind = in.ConsumeIntegralInRange<int>(0, 3);      // 0-1 apart, 2 in place, 3 near x
  const uint8_t specials = in.ConsumeIntegral<uint8_t>();
  const int corruption = in.ConsumeIntegralInRange<int>(0, 15);  // 0-7: one of these, else none

  std::vector<float> xb(lay.buffer()), yb(lay.buffer()), mb(lay.buffer());
  Fill(xb, values), Fill(yb, values), Fill(mb, values);
  for (float& m : mb) m *= 4;
  // -Inf every k-th mask element, a fully masked row, a NaN / +Inf / -Inf input.
  if (specials & 1) for (size_t i = specials % 7; i < mb.size(); i += 2 + specials % 5) mb[i] = -kInf;
  if ((specials & 2) && rows) std::fill_n(mb.begin() + lay.pad + (specials >> 4) % rows * x_ld, cols, -kInf);
  if ((specials & 4) && rows && cols) {
    xb[lay.pad + (specials >> 3) % (rows * x_ld)] = fuzz::Pick(in, {kNan, kInf, -kInf});
  }
  const auto matrix_at = [&](float* p) { return MatrixView<float>{p, rows, cols, x_ld}; };
  MatrixView<float> x = matrix_at(xb.data() + lay.pad), y = matrix_at(yb.data() + lay.pad);
  if (y_kind == 2) y = x;
  if (y_kind == 3) y = matrix_at(xb.data() + lay.pad + lay.shift(in));
  if (mask_kind == 1 || mask_kind == 2) opt.mask = matrix_at(mb.data() + lay.pad);
  if (mask_kind == 3) opt.mask = x;
  if (mask_kind == 4 && y_kind != 3) opt.mask = matrix_at(y.data + lay.shift(in));  // y at its buffer's pad

  Expect expect;
  expect.must_fail = !std::isfinite(opt.scale) || (rows && !cols);
  if (rows && cols) {
    if (x.data != y.data) expect.relation(Relate(rows_of(x), rows_of(y)));
    if (opt.mask.data) expect.relation(Relate(rows_of(opt.mask), rows_of(y)));
  }
  std::vector<float> x0, m0;
  if (!expect.must_fail) {
    for (size_t r = 0; r < rows; ++r) {
      x0.insert(x0.end(), x.data + r * x.ld, x.data + r * x.ld + cols);
      if (opt.mask.data) m0.insert(m0.end(), opt.mask.data + r * x.ld, opt.mask.data + r * x.ld + cols);
    }
  }
  switch (corruption) {
    case 0: if (rows && cols) x.data = nullptr, expect.must_fail = true; break;
    case 1: if (rows && cols) y.data = nullptr, expect.must_fail = true; break;
    case 2: if (cols) x.ld = cols - 1, expect.must_fail = true; break;
    case 3: if (cols && opt.mask.data) opt.mask.ld = cols - 1, expect.must_fail = true; break;
    case 4: y.rows += 1, expect.must_fail = true; break;
    case 5: if (opt.mask.data) opt.mask.cols += 1, expect.must_fail = true; break;
    case 6: if (rows) x.cols = y.cols = opt.mask.cols = 0, expect.must_fail = true; break;
    case 7:  // (rows - 1)·ld + cols floats overflow size_t
      if (cols) x.rows = y.rows = opt.mask.rows = fuzz::HugeDim(in), expect.must_fail = true;
      break;
    default: break;
  }
  Region rx(xb), ry(yb), rm(mb);
  const Status s = softmax(x, y, opt);
  if (!expect.accepted(s, "softmax", corruption)) {
    CheckUntouched({&rx, &ry, &rm}, true, "softmax");
    return;
  }
  ForEachElement(rows_of(y), [&](size_t, size_t, size_t, const float* p) { rx.allow(p), ry.allow(p), rm.allow(p); });
  CheckUntouched({&rx, &ry, &rm}, false, "softmax");
  for (size_t r = 0; r < rows; ++r) {
    const testing::SoftmaxRow want =
        testing::SoftmaxRowRef(&x0[r * cols], opt.mask.data ? &m0[r * cols] : nullptr, opt.scale, cols);
    for (size_t i = 0; i < cols; ++i) {
      const float got = y.data[r * y.ld + i];
      if (want.nan_row) {
        TILEKIT_FUZZ_CHECK(std::isnan(got), "softmax y[%zu][%zu] = %g in a row with NaN or +Inf", r, i, got);
        continue;
      }
      TILEKIT_FUZZ_CHECK(std::fabs(got - want.ref[i]) <= want.bound[i],
                         "softmax y[%zu][%zu] = %.9g, want %.9g, bound %.3g (n %zu, scale %g)", r, i, got, want.ref[i],
                         want.bound[i], cols, opt.scale);
    }
  }
}

void Run(FuzzedDataProvider& in) {
  fuzz::Force(fuzz::PickPath(in));
  const int op = in.ConsumeIntegralInRange<int>(0, 7);
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());
  switch (op) {
    case 0: RunNorm<float, float>(in, values); break;
    case 1: RunNorm<float, bf16>(in, values); break;
    case 2: RunNorm<bf16, float>(in, values); break;
    case 3: RunNorm<bf16, bf16>(in, values); break;
    case 4: RunRope<float>(in, values); break;
    case 5: RunRope<bf16>(in, values); break;
    default: RunSoftmax(in, values); break;
  }
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)
