// The tiled path (prefill) on the matrix units, for bf16 K/V on the paths with
// bf16 tile products: AMX (amx) and BFMMLA (neon_bf16, sve_bf16). Same task,
// same outputs as AttendTiled (acc unnormalised, m, l per row), so the
// driver's split, merge, LSE and normalisation mean the same.
//
// One flow for both matrix units; a backend supplies the two products and the
// shape of its operands (AmxAttn, BfmmlaAttn below). Per task (one KV head, a
// block of query tokens × the group's q-heads as rows):
//   Q·scale rounded to bf16 once, as Qᵀ panels (B operand: d × rows, nr rows
//   per panel), so the scores come out key-major, Sᵀ[key][row] = K · Qᵀ: the
//   layout SoftmaxTile (attention-inl.h) runs on, one lane per row, shared
//   with the fp32 path. Per tile of up to kAttnTileKeys keys:
//     K as the A operand (AMX: read in place when d is a multiple of 32;
//     BFMMLA: packed to row pairs), Sᵀ by the backend's product;
//     SoftmaxTile: softcap, additive mask, key ranges, max, exp, sum, alpha,
//     −0 marks for masked keys, NaN rules;
//     P transposed to rows and rounded to bf16 (the A operand of P·V), V
//     packed as B panels (dv columns, nr per panel), O rows scaled by alpha,
//     O += P·V by the backend's product.
// A masked key's p is −0, and −0 × v adds nothing for a finite v; a V row
// with an Inf or NaN is packed as zeros and added apart, by the rows that
// keep its key (p not −0), so a masked non-finite V never reaches an output
// (the fp32 path's rule: keys with a −inf logit never meet V).
//
// Arithmetic (the tests' bound, tests/attention_reference.h): Q rounded to
// bf16 after the scale (the reference rounds the same way), products of bf16
// exact in fp32 and summed in fp32 (AMX flushes bf16 denormals to zero), p
// rounded to bf16 for P·V (relative 2^-8) while l sums the fp32 p.
#if defined(TILEKIT_ATTENTION_TILED_BRGEMM_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_ATTENTION_TILED_BRGEMM_INL_H_
#undef TILEKIT_ATTENTION_TILED_BRGEMM_INL_H_
#else
#define TILEKIT_ATTENTION_TILED_BRGEMM_INL_H_
#endif

#include <algorithm>
#include <cstring>
#include <limits>

#include <hwy/highway.h>

#include "tilekit/arch/amx_brgemm.h"
#include "tilekit/arch/arm_bfmmla.h"
#include "tilekit/attention/attention-inl.h"
#include "tilekit/attention/plan.h"
#include "tilekit/base/bf16.h"
#include "tilekit/simd/bf16-inl.h"

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The Highway targets of the matrix paths: AVX3 (amx), NEON (neon_bf16) and
// SVE (sve_bf16). The flow is compiled for those alone.
#undef TILEKIT_ATTN_MATRIX
#if TILEKIT_ARCH_X86 && (HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL)
#define TILEKIT_ATTN_MATRIX 1
#elif TILEKIT_ARCH_ARM64 && (HWY_TARGET == HWY_NEON || HWY_TARGET == HWY_SVE)
#define TILEKIT_ATTN_MATRIX 1
#endif

#if defined(TILEKIT_ATTN_MATRIX)
// A B panel of nr columns whose k runs in groups of kKR (the AMX VNNI pair:
// kKR = 2; BFMMLA's k-block: kKR = 4; arch/amx_brgemm.h,
// arch/arm_bfmmla_tile.h) holds element (k, j) at (k / kKR)·nr·kKR + j·kKR +
// k % kKR: per k-group, one word of kKR bf16 per column, the first k in the
// low bits.
template <size_t kKR>
struct PanelWord;
template <>
struct PanelWord<2> {
  using T = uint32_t;
};
template <>
struct PanelWord<4> {
  using T = uint64_t;
};

// Qᵀ as B panels: column r (a query row), k = c (the head dim), the value
// bf16(q[r][c] · scale), zeros past `rows` (up to R) and past d (up to dp).
// Panel p (rows [p·nr, p·nr + nr)) starts at p · dp · nr. Each row is scaled
// and rounded a vector at a time into `row` (dp bf16), then its k-groups go
// to the panel as words (PanelWord).
template <size_t kKR, class DF>
HWY_INLINE void PackQPanels(DF df, const AttnShape& sh, const AttnSeq& sq, size_t kv_head, size_t t0, size_t rows,
                            size_t R, size_t dp, size_t nr, uint16_t* HWY_RESTRICT row, uint16_t* HWY_RESTRICT out) {
  using W = typename PanelWord<kKR>::T;
  const size_t L = hn::Lanes(df);
  const hn::Rebind<uint16_t, DF> d16;
  const size_t G = sh.group, d = sh.d;
  const auto vscale = hn::Set(df, sh.scale);
  for (size_t r = 0; r < R; ++r) {
    std::fill(row, row + dp, uint16_t{0});
    if (r < rows) {
      const float* src = sq.q + (t0 + r / G) * sq.q_stride + (kv_head * G + r % G) * d;
      size_t c = 0;
      for (; c + L <= d; c += L) hn::StoreU(ToBf16Bits<true>(df, hn::Mul(hn::LoadU(df, src + c), vscale)), d16, row + c);
      for (; c < d; ++c) row[c] = f32_to_bf16(src[c] * sh.scale).bits;
    }
    W* col = reinterpret_cast<W*>(out + (r / nr) * dp * nr) + r % nr;
    for (size_t k = 0; k < dp / kKR; ++k) std::memcpy(col + k * nr, row + k * kKR, sizeof(W));
  }
}

// Whether bf16 row[0, n) holds an Inf or a NaN (every exponent bit set).
template <class D16>
HWY_INLINE bool AnyNonFinite(D16 d16, const uint16_t* HWY_RESTRICT row, size_t n) {
  const size_t L = hn::Lanes(d16);
  const auto exp_mask = hn::Set(d16, uint16_t{0x7F80});
  auto hit = hn::Zero(d16);
  size_t c = 0;
  for (; c + L <= n; c += L) {
    const auto e = hn::And(hn::LoadU(d16, row + c), exp_mask);
    hit = hn::Or(hit, hn::VecFromMask(d16, hn::Eq(e, exp_mask)));
  }
  bool any = !hn::AllFalse(d16, hn::Ne(hit, hn::Zero(d16)));
  for (; c < n; ++c) any |= (row[c] & 0x7F80u) == 0x7F80u;
  return any;
}

// V of a tile as B panels: k = key j < kp, column c < dvp; zeros past n keys,
// past dv, and for keys whose V row holds an Inf or NaN (their indices go to
// special; returns how many). Each k-group of kKR keys is one word per column
// (PanelWord): the kKR rows widened and shifted into place, a vector of
// columns at a time (a chunk never straddles a panel: nr is a multiple of the
// words per vector).
template <size_t kKR, class DF>
HWY_INLINE size_t PackVPanels(DF /*df*/, const uint16_t* HWY_RESTRICT v, size_t vs, size_t n, size_t kp, size_t dv,
                              size_t dvp, size_t nr, uint16_t* HWY_RESTRICT out, uint32_t* HWY_RESTRICT special) {
  using W = typename PanelWord<kKR>::T;
  const hn::ScalableTag<W> dw;
  const hn::Rebind<uint32_t, decltype(dw)> d32;
  const hn::Rebind<uint16_t, decltype(dw)> d16;
  const hn::ScalableTag<uint16_t> d16full;
  const size_t LW = hn::Lanes(dw);
  size_t count = 0;
  for (size_t j0 = 0; j0 < kp; j0 += kKR) {
    const uint16_t* rows[kKR];
    for (size_t i = 0; i < kKR; ++i) {
      const size_t j = j0 + i;
      rows[i] = j < n ? v + j * vs : nullptr;
      if (rows[i] && AnyNonFinite(d16full, rows[i], dv)) {
        special[count++] = static_cast<uint32_t>(j);
        rows[i] = nullptr;
      }
    }
    W* group = reinterpret_cast<W*>(out + j0 * nr);  // panel 0's k-group; panel q is q · kp · nr further
    size_t c = 0;
    for (; c + LW <= dv; c += LW) {
      auto word = hn::Zero(dw);
      for (size_t i = 0; i < kKR; ++i) {
        if (!rows[i]) continue;
        hn::Vec<decltype(dw)> w;
        if constexpr (sizeof(W) == 4) {
          w = hn::PromoteTo(dw, hn::LoadU(d16, rows[i] + c));
        } else {
          w = hn::PromoteTo(dw, hn::PromoteTo(d32, hn::LoadU(d16, rows[i] + c)));
        }
        word = hn::Or(word, hn::ShiftLeftSame(w, static_cast<int>(16 * i)));
      }
      hn::StoreU(word, dw, group + (c / nr) * kp * nr / kKR + c % nr);
    }
    for (; c < dvp; ++c) {  // the columns past the last whole vector, and zeros past dv
      W word = 0;
      for (size_t i = 0; i < kKR; ++i) {
        if (rows[i] && c < dv) word |= static_cast<W>(rows[i][c]) << (16 * i);
      }
      group[(c / nr) * kp * nr / kKR + c % nr] = word;
    }
  }
  return count;
}

// dst[c][0, 8) = src[0, 8)[c] for an 8 × 8 block of 16-bit values (src rows
// ss, dst rows ds elements apart): interleaves of 16-, 32- and 64-bit lanes
// within one 128-bit vector, the same on every target.
template <class D8>
HWY_INLINE void Transpose8x8(D8 d, const uint16_t* HWY_RESTRICT src, size_t ss, uint16_t* HWY_RESTRICT dst,
                             size_t ds) {
  const hn::Repartition<uint32_t, D8> d32;
  const hn::Repartition<uint64_t, D8> d64;
  const auto r0 = hn::LoadU(d, src), r1 = hn::LoadU(d, src + ss), r2 = hn::LoadU(d, src + 2 * ss);
  const auto r3 = hn::LoadU(d, src + 3 * ss), r4 = hn::LoadU(d, src + 4 * ss), r5 = hn::LoadU(d, src + 5 * ss);
  const auto r6 = hn::LoadU(d, src + 6 * ss), r7 = hn::LoadU(d, src + 7 * ss);
  // Pairs of rows, column by column: a0 = r0[0] r1[0] r0[1] r1[1] ...
  const auto a0 = hn::BitCast(d32, hn::InterleaveLower(d, r0, r1)), a1 = hn::BitCast(d32, hn::InterleaveUpper(d, r0, r1));
  const auto a2 = hn::BitCast(d32, hn::InterleaveLower(d, r2, r3)), a3 = hn::BitCast(d32, hn::InterleaveUpper(d, r2, r3));
  const auto a4 = hn::BitCast(d32, hn::InterleaveLower(d, r4, r5)), a5 = hn::BitCast(d32, hn::InterleaveUpper(d, r4, r5));
  const auto a6 = hn::BitCast(d32, hn::InterleaveLower(d, r6, r7)), a7 = hn::BitCast(d32, hn::InterleaveUpper(d, r6, r7));
  // Quads of rows, two columns each: b0 = rows 0-3 of columns 0 and 1.
  const auto b0 = hn::BitCast(d64, hn::InterleaveLower(d32, a0, a2)), b1 = hn::BitCast(d64, hn::InterleaveUpper(d32, a0, a2));
  const auto b2 = hn::BitCast(d64, hn::InterleaveLower(d32, a1, a3)), b3 = hn::BitCast(d64, hn::InterleaveUpper(d32, a1, a3));
  const auto b4 = hn::BitCast(d64, hn::InterleaveLower(d32, a4, a6)), b5 = hn::BitCast(d64, hn::InterleaveUpper(d32, a4, a6));
  const auto b6 = hn::BitCast(d64, hn::InterleaveLower(d32, a5, a7)), b7 = hn::BitCast(d64, hn::InterleaveUpper(d32, a5, a7));
  hn::StoreU(hn::BitCast(d, hn::InterleaveLower(d64, b0, b4)), d, dst);
  hn::StoreU(hn::BitCast(d, hn::InterleaveUpper(d64, b0, b4)), d, dst + ds);
  hn::StoreU(hn::BitCast(d, hn::InterleaveLower(d64, b1, b5)), d, dst + 2 * ds);
  hn::StoreU(hn::BitCast(d, hn::InterleaveUpper(d64, b1, b5)), d, dst + 3 * ds);
  hn::StoreU(hn::BitCast(d, hn::InterleaveLower(d64, b2, b6)), d, dst + 4 * ds);
  hn::StoreU(hn::BitCast(d, hn::InterleaveUpper(d64, b2, b6)), d, dst + 5 * ds);
  hn::StoreU(hn::BitCast(d, hn::InterleaveLower(d64, b3, b7)), d, dst + 6 * ds);
  hn::StoreU(hn::BitCast(d, hn::InterleaveUpper(d64, b3, b7)), d, dst + 7 * ds);
}

// P as rows for the A operand of P·V: p[r][j] = bf16(st[j][r]) for j < n,
// zeros up to kp; row stride kAttnTileKeys, rows up to `rows` rounded to 8
// (R is a multiple of 8). Rounded a vector at a time into pt (key-major, like
// st; one instruction on these paths), keys past n zeroed to a multiple of 8,
// then transposed 8 × 8 at a time (so p holds zeros from n to the larger of
// kp and n rounded to 8). The −0 of a masked key stays −0.
template <class DF>
HWY_INLINE void PRowsBf16(DF df, const float* HWY_RESTRICT st, size_t R, size_t rows, size_t n, size_t kp,
                          uint16_t* HWY_RESTRICT pt, uint16_t* HWY_RESTRICT p) {
  const size_t L = hn::Lanes(df);
  const hn::Rebind<uint16_t, DF> d16;
  const hn::FixedTag<uint16_t, 8> d8;
  for (size_t i = 0; i < n * R; i += L) hn::StoreU(ToBf16Bits<true>(df, hn::LoadU(df, st + i)), d16, pt + i);
  const size_t n8 = (n + 7) / 8 * 8, rows8 = (rows + 7) / 8 * 8;
  std::fill(pt + n * R, pt + n8 * R, uint16_t{0});
  for (size_t r = 0; r < rows8; r += 8) {
    for (size_t j = 0; j < n8; j += 8) Transpose8x8(d8, pt + j * R + r, R, p + r * kAttnTileKeys + j, kAttnTileKeys);
    for (size_t i = r; i < r + 8 && n8 < kp; ++i) {
      std::fill(p + i * kAttnTileKeys + n8, p + i * kAttnTileKeys + kp, uint16_t{0});
    }
  }
}

// The products of one tile on BFMMLA (neon_bf16, sve_bf16): the micro-kernel
// of arch/arm_bfmmla_tile.h over A packed once per tile (the batch-reduce GEMM
// arm_bf16_brgemm packs A again for every call, i.e. for every panel).
#if TILEKIT_ARCH_ARM64
#define TILEKIT_ATTN_MATRIX_BFMMLA 1
struct BfmmlaAttn {
  static constexpr size_t kKR = arch::kBfmmlaKR, kKAlign = arch::kBfmmlaKR;
  arch::BfmmlaKernel kern;
  size_t nr;
  explicit BfmmlaAttn(Isa isa) : kern(arch::BfmmlaKernelOn(isa)), nr(kern.nr) {}

  // C (rows × panels·nr, ldc) [+]= A · B: A packed (PackA, kblocks k-blocks),
  // B `panels` panels of kblocks·4·nr elements.
  void Product(const uint16_t* a, size_t rows, size_t kblocks, const uint16_t* b, size_t panels, float* c, size_t ldc,
               bool accumulate) const {
    for (size_t i0 = 0; i0 < rows; i0 += arch::kBfmmlaMR) {
      const size_t tr = std::min(arch::kBfmmlaMR, rows - i0);
      const arch::BfmmlaTileFn tile = kern.tile[(tr + 1) / 2 - 1];
      for (size_t p = 0; p < panels; ++p) {
        tile(kblocks, a + i0 * kblocks * kKR, b + p * kblocks * kKR * nr, c + i0 * ldc + p * nr, ldc, tr, accumulate);
      }
    }
  }
  // st[j][0, R) = K[j] · Qᵀ for the n keys of a tile (K rows ks apart).
  void Scores(const uint16_t* k, size_t ks, size_t n, size_t d, size_t dp, const uint16_t* qpanels, size_t R,
              float* st, uint16_t* kop) const {
    arch::PackA(reinterpret_cast<const bf16*>(k), ks, n, d, kop);
    Product(kop, n, dp / kKR, qpanels, R / nr, st, R, /*accumulate=*/false);
  }
  // o[r][0, dvp) += Σ_j p[r][j] · V[j] (p rows kAttnTileKeys apart, kp keys).
  void Pv(const uint16_t* p, size_t rows, size_t kp, const uint16_t* vpanels, size_t dvp, float* o,
          uint16_t* pop) const {
    arch::PackA(reinterpret_cast<const bf16*>(p), kAttnTileKeys, rows, kp, pop);
    Product(pop, rows, kp / kKR, vpanels, dvp / nr, o, dvp, /*accumulate=*/true);
  }
};
#endif

// The products of one tile on AMX (amx): the tile loop of arch/amx_brgemm.h,
// blocks of up to 32 × 32. Called straight, past amx_brgemm's checks: the
// driver chose the path once per call (a concurrent set_max_isa must not make
// a product of this call refuse).
#if TILEKIT_ARCH_X86
#define TILEKIT_ATTN_MATRIX_AMX 1
struct AmxAttn {
  static constexpr size_t kKR = 2, kKAlign = arch::kStepK;
  size_t nr = arch::kBrgemmMaxBlock;

  // C[m][32] += A[m][k] · B (A rows lda apart, B one 32-column panel). The
  // stores before it reach memory first (load_tile_config's clobber); GCC's
  // tile store has no memory operand, so the caller orders what reads C after
  // with tile_load_barrier.
  static void Block(size_t m, size_t k, const uint16_t* a, size_t lda, const uint16_t* b, float* c, size_t ldc) {
    const arch::BrgemmItem item{reinterpret_cast<const bf16*>(a), lda, reinterpret_cast<const bf16*>(b)};
    arch::load_tile_config(arch::detail::BrgemmConfig(m, arch::kBrgemmMaxBlock));
    if (m > arch::kTileRows) {
      arch::detail::BrgemmTiles<2, 2>(k, &item, 1, c, ldc);
    } else {
      arch::detail::BrgemmTiles<1, 2>(k, &item, 1, c, ldc);
    }
  }
  void Scores(const uint16_t* k, size_t ks, size_t n, size_t d, size_t dp, const uint16_t* qpanels, size_t R,
              float* st, uint16_t* kop) const {
    const uint16_t* a = k;
    size_t lda = ks;
    if (d != dp) {  // a tile load reads 32 k at a time: rows padded with zeros
      for (size_t j = 0; j < n; ++j) {
        std::memcpy(kop + j * dp, k + j * ks, d * sizeof(uint16_t));
        std::memset(kop + j * dp + d, 0, (dp - d) * sizeof(uint16_t));
      }
      a = kop;
      lda = dp;
    }
    std::fill(st, st + n * R, 0.f);
    for (size_t i0 = 0; i0 < n; i0 += nr) {
      for (size_t p = 0; p < R / nr; ++p) {
        Block(std::min(nr, n - i0), dp, a + i0 * lda, lda, qpanels + p * dp * nr, st + i0 * R + p * nr, R);
      }
    }
    arch::tile_load_barrier();
  }
  void Pv(const uint16_t* p, size_t rows, size_t kp, const uint16_t* vpanels, size_t dvp, float* o,
          uint16_t* /*pop*/) const {
    for (size_t r0 = 0; r0 < rows; r0 += nr) {
      for (size_t q = 0; q < dvp / nr; ++q) {
        Block(std::min(nr, rows - r0), kp, p + r0 * kAttnTileKeys, kAttnTileKeys, vpanels + q * kp * nr,
              o + r0 * dvp + q * nr, dvp);
      }
    }
    arch::tile_load_barrier();
  }
};
#endif

// One KV head's rows [t0, t1) × group over keys [j0, j1): AttendTiled's
// contract, on the backend's products.
template <class DF, class Backend>
HWY_NOINLINE void AttendTiledMatrixHead(DF df, const Backend& be, const AttnShape& sh, const AttnSeq& sq,
                                        size_t kv_head, size_t t0, size_t t1, size_t j0, size_t j1,
                                        float* HWY_RESTRICT acc, float* HWY_RESTRICT m_out,
                                        float* HWY_RESTRICT l_out, float* HWY_RESTRICT ws) {
  const size_t L = hn::Lanes(df);
  const size_t G = sh.group, d = sh.d, dv = sh.dv, nr = be.nr;
  const size_t rows = (t1 - t0) * G;
  const AttnMatrixWs w = AttnMatrixLayout(rows, d, dv, nr, Backend::kKAlign);
  const size_t R = w.R, dp = w.dp, dvp = w.dvp;
  uint16_t* qpanels = reinterpret_cast<uint16_t*>(ws + w.qpanels);
  float* HWY_RESTRICT st = ws + w.st;
  float* HWY_RESTRICT m = ws + w.m;
  float* HWY_RESTRICT l = ws + w.l;
  float* HWY_RESTRICT alpha = ws + w.alpha;
  float* HWY_RESTRICT lo = ws + w.lo;
  float* HWY_RESTRICT hi = ws + w.hi;
  uint16_t* kop = reinterpret_cast<uint16_t*>(ws + w.kop);
  uint16_t* pt = reinterpret_cast<uint16_t*>(ws + w.pt);
  uint16_t* p = reinterpret_cast<uint16_t*>(ws + w.p);
  uint16_t* pop = reinterpret_cast<uint16_t*>(ws + w.pop);
  uint16_t* vpanels = reinterpret_cast<uint16_t*>(ws + w.vpanels);
  float* HWY_RESTRICT o = ws + w.o;
  uint32_t* special = reinterpret_cast<uint32_t*>(ws + w.special);

  PackQPanels<Backend::kKR>(df, sh, sq, kv_head, t0, rows, R, dp, nr, kop, qpanels);
  size_t lo_all = j1, hi_all = j0;
  for (size_t r = 0; r < R; ++r) {
    m[r] = -std::numeric_limits<float>::infinity();
    l[r] = 0.f;
    lo[r] = hi[r] = 0.f;  // padding rows keep no key
    if (r >= rows) continue;
    size_t a, b;
    AttnKeyRange(sh, sq, t0 + r / G, &a, &b);
    a = std::max(a, j0);
    b = std::min(b, j1);
    if (a >= b) continue;
    lo[r] = static_cast<float>(a);
    hi[r] = static_cast<float>(b);
    lo_all = std::min(lo_all, a);
    hi_all = std::max(hi_all, b);
  }
  std::fill(o, o + rows * dvp, 0.f);

  const AttnKv& kv = sq.kv;
  const size_t ks = kv.k_stride / sizeof(uint16_t), vs = kv.v_stride / sizeof(uint16_t);
  for (size_t a = lo_all, b; a < hi_all; a = b) {
    b = std::min(a + kAttnTileKeys, hi_all);
    const uint16_t *ktile, *vtile;
    TileAt(kv, kv_head, d, dv, a, &b, &ktile, &vtile);
    const size_t n = b - a, kp = (n + Backend::kKAlign - 1) / Backend::kKAlign * Backend::kKAlign;
    be.Scores(ktile, ks, n, d, dp, qpanels, R, st, kop);
    // The next tile's K/V rows into L2 while this one's softmax and P·V run.
    const NextTile next = NextTileAt<uint16_t>(kv, kv_head, d, dv, b, hi_all);
    for (size_t j = 0; j < kAttnTileKeys; ++j) next.Fetch(j);
    SoftmaxTile(df, sh, sq, t0, rows, R, a, n, lo, hi, st, m, l, alpha);
    PRowsBf16(df, st, R, rows, n, kp, pt, p);
    const size_t specials = PackVPanels<Backend::kKR>(df, vtile, vs, n, kp, dv, dvp, nr, vpanels, special);
    for (size_t r = 0; r < rows; ++r) {
      if (alpha[r] == 1.f) continue;  // the row's max did not move
      const auto va = hn::Set(df, alpha[r]);
      float* orow = o + r * dvp;
      for (size_t c = 0; c < dvp; c += L) hn::StoreU(hn::Mul(hn::LoadU(df, orow + c), va), df, orow + c);
    }
    be.Pv(p, rows, kp, vpanels, dvp, o, pop);
    // Keys with a non-finite V row, by the rows that keep them.
    for (size_t i = 0; i < specials; ++i) {
      const size_t j = special[i];
      const uint16_t* vrow = vtile + j * vs;
      for (size_t r = 0; r < rows; ++r) {
        const uint16_t pb = p[r * kAttnTileKeys + j];
        if (pb == 0x8000u) continue;  // −0: masked
        const float pf = bf16_to_f32(bf16{pb});
        for (size_t c = 0; c < dv; ++c) o[r * dvp + c] += pf * bf16_to_f32(bf16{vrow[c]});
      }
    }
  }
  for (size_t r = 0; r < rows; ++r) {
    std::memcpy(acc + r * dv, o + r * dvp, dv * sizeof(float));
    m_out[r] = m[r];
    l_out[r] = l[r];
  }
}

#endif  // TILEKIT_ATTN_MATRIX

// The hook of AttendRowsT's tiled branch (declared in attention-inl.h): runs
// heads [h0, h1) on the matrix units and returns true when the call's path
// has them and K/V are bf16 (AttnMatrixPath); false otherwise.
inline bool AttendTiledMatrix(const AttnShape& sh, const AttnSeq& sq, size_t h0, size_t h1, size_t t0, size_t t1,
                              size_t j0, size_t j1, float* acc, float* m, float* l, float* ws) {
  if (!AttnMatrixPath(sh.isa, sq.kv.bf16)) return false;
  const size_t rh = (t1 - t0) * sh.group;
#if defined(TILEKIT_ATTN_MATRIX_BFMMLA)
  if (sh.isa == Isa::kAmx) return false;
  const hn::ScalableTag<float> df;
  const BfmmlaAttn be(sh.isa);
#elif defined(TILEKIT_ATTN_MATRIX_AMX)
  if (sh.isa != Isa::kAmx) return false;
  const hn::ScalableTag<float> df;
  const AmxAttn be;
#else
  (void)rh, (void)h0, (void)h1, (void)t0, (void)t1, (void)j0, (void)j1, (void)acc, (void)m, (void)l, (void)ws;
  return false;
#endif
#if defined(TILEKIT_ATTN_MATRIX_BFMMLA) || defined(TILEKIT_ATTN_MATRIX_AMX)
  for (size_t h = h0; h < h1; ++h) {
    const size_t r0 = (h - h0) * rh;
    AttendTiledMatrixHead(df, be, sh, sq, h, t0, t1, j0, j1, acc + r0 * sh.dv, m + r0, l + r0, ws);
  }
  return true;
#endif
}
#undef TILEKIT_ATTN_MATRIX_BFMMLA
#undef TILEKIT_ATTN_MATRIX_AMX
#undef TILEKIT_ATTN_MATRIX

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_ATTENTION_TILED_BRGEMM_INL_H_
