// The quantized kernel on AVX-512 VNNI and its record: int8 / int4 weights on
// x86 paths of 16-lane vectors whose CPU has vpdpbusd (u8 × s8 dot products
// into int32). The packed layout is the quantized kernel's (gemm/quant.h); the
// record differs in what many rows run:
//   M < kInt8ActMinRows: the weight-only kernels of gemm/quant-inl.h (decode:
//     the bytes of the weights are the cost, and fp32 activations stay exact);
//   M >= kInt8ActMinRows: A quantized to int8 per row and sub-group of at most
//     256 K values (dynamic, symmetric: the rule of gemm/quant_act.h), the
//     stored weights (offset binary u8, as packed) times the int8 activations
//     summed exactly in int32 by vpdpbusd, z · Σq_a subtracted, then scaled by
//     the weight's and the row's scales and summed in fp32, one sub-group at a
//     time.
//
// Loops, for one share (rows [r0, r1) × panels [p0, p1)):
//   ic: mc rows   A quantized once (int8 rows padded to whole groups, a scale
//                 and a sum per sub-group) into the workspace;
//   panel, then K block of kc (whole sub-groups): the slice's rows moved to
//                 vpdpbusd's order, [kc/4][32][4] bytes (4 consecutive K of a
//                 column in one 32-bit lane; int4 nibbles widened to bytes),
//                 once per row block, in L1;
//   row tile of kVnniMR rows × 32 columns over the K block: int32 sums and
//                 fp32 results in registers; fp32 partial sums between K
//                 blocks in the workspace, exact to store and reload.
// Every output sums its sub-groups in K order whatever the blocking or thread
// count, so 1 and N threads give the same bits.
#ifndef TILEKIT_GEMM_QUANT_VNNI_H_
#define TILEKIT_GEMM_QUANT_VNNI_H_

#include "tilekit/cpu/features.h"

#if TILEKIT_ARCH_X86

#include <immintrin.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <utility>

#include "tilekit/base/bf16.h"
#include "tilekit/base/size_math.h"
#include "tilekit/cpu/dispatch.h"
#include "tilekit/gemm/exports.h"
#include "tilekit/gemm/kernel.h"
#include "tilekit/gemm/quant.h"
#include "tilekit/gemm/quant_act.h"

namespace tilekit {
namespace detail {

#define TILEKIT_VNNI_TARGET __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vnni")))

// Rows of the register tile: 6 rows × 2 vectors of int32 sums and as many fp32
// results, 24 of 32 registers, the rest for the weights, a broadcast and the
// scales. vpdpbusd issues one per cycle: 12 per 4 K steps of the tile.
constexpr size_t kVnniMR = 6;
constexpr size_t kVnniNR = 32;  // the quantized layout's panels on 16-lane paths
// K per block: 512 values of a 32-column slice are 16 KiB in L1.
constexpr size_t kVnniKc = 512;

// Rows [k0, k1) of a quantized panel (whole sub-groups, within the layout's
// groups) moved to vpdpbusd's order: out[(k / 4) · 128 + 4c + k % 4] = u(k, c).
template <bool kInt4>
TILEKIT_VNNI_TARGET inline void RelayoutSlice(const uint8_t* panel, size_t g, size_t row_bytes, size_t group_bytes,
                                              size_t k0, size_t k1, uint8_t* __restrict out) {
  const __m256i low = _mm256_set1_epi8(0x0F);
  for (size_t k = k0; k < k1; k += 4) {
    __m256i r[4];
    for (int t = 0; t < 4; ++t) {
      const size_t kk = k + t;
      const uint8_t* row = panel + (kk / g) * group_bytes + (kk % g) * row_bytes;
      if constexpr (kInt4) {
        // 16 bytes: columns 0-15 in the low nibbles, 16-31 in the high ones.
        const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row));
        const __m256i both = _mm256_inserti128_si256(_mm256_castsi128_si256(x), _mm_srli_epi16(x, 4), 1);
        r[t] = _mm256_and_si256(both, low);
      } else {
        r[t] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(row));
      }
    }
    // Interleave the four rows byte by byte: (k, c) pairs, then quadruples.
    const __m256i ab_lo = _mm256_unpacklo_epi8(r[0], r[1]), ab_hi = _mm256_unpackhi_epi8(r[0], r[1]);
    const __m256i cd_lo = _mm256_unpacklo_epi8(r[2], r[3]), cd_hi = _mm256_unpackhi_epi8(r[2], r[3]);
    const __m256i q0 = _mm256_unpacklo_epi16(ab_lo, cd_lo), q1 = _mm256_unpackhi_epi16(ab_lo, cd_lo);
    const __m256i q2 = _mm256_unpacklo_epi16(ab_hi, cd_hi), q3 = _mm256_unpackhi_epi16(ab_hi, cd_hi);
    // Within each 128-bit lane the unpacks give columns 0-3, 4-7, 8-11, 12-15
    // (lane 0: columns 0-15; lane 1: 16-31): put them back in column order.
    uint8_t* dst = out + (k - k0) / 4 * 128;
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), _mm256_permute2x128_si256(q0, q1, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 32), _mm256_permute2x128_si256(q2, q3, 0x20));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 64), _mm256_permute2x128_si256(q0, q1, 0x31));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst + 96), _mm256_permute2x128_si256(q2, q3, 0x31));
  }
}

// One tile's work over one K block: A rows (int8, stride kp) from k0, their
// sub-group scales and sums from j0, the weight slices of its panels in
// vpdpbusd's order and their scales per sub-group.
struct VnniTileArgs {
  const uint8_t* b[2];  // the slices of its kPanels panels
  const int8_t* a;
  size_t kp;
  const float* a_scale;
  const int32_t* a_sum;
  size_t a_subgroups;            // row stride of a_scale and a_sum
  const float* w_scale[2][kVnniKc / 4];  // per panel, per sub-group of the block: 32 fp32
  size_t subgroups, sg;
  int32_t zero;
  float* c;  // rows × 64 fp32 partial sums (row stride 64; the second panel at +32)
};

// acc_v += b_v · (4 bytes at a, broadcast), u8 weights × s8 activations, for
// the first 2·kPanels vectors. Written out: GCC 12 copied the accumulator of
// _mm512_dpbusd_epi32 to a spare register and back around each call (twice
// the instructions of the loop), and folding the broadcast into the
// instruction ({1to16}) spares a load-and-broadcast per row and step. Both
// AT&T and Intel operand orders, for code built with -masm=intel.
#define TILEKIT_VNNI_DPBUSD(B, C) "vpdpbusd {%[a]%{1to16%}, %[" #B "], %[" #C "]|%[" #C "], %[" #B "], %[a]%{1to16%}}\n\t"
template <int kPanels>
TILEKIT_VNNI_TARGET inline void DotBroadcast(const int8_t* a, const __m512i* b, __m512i& c0, __m512i& c1,
                                             __m512i& c2, __m512i& c3) {
  if constexpr (kPanels == 2) {
    asm(TILEKIT_VNNI_DPBUSD(b0, c0) TILEKIT_VNNI_DPBUSD(b1, c1) TILEKIT_VNNI_DPBUSD(b2, c2)
            TILEKIT_VNNI_DPBUSD(b3, c3)
        : [c0] "+v"(c0), [c1] "+v"(c1), [c2] "+v"(c2), [c3] "+v"(c3)
        : [b0] "v"(b[0]), [b1] "v"(b[1]), [b2] "v"(b[2]), [b3] "v"(b[3]),
          [a] "m"(*reinterpret_cast<const int32_t*>(a)));
  } else {
    (void)c2, (void)c3;
    asm(TILEKIT_VNNI_DPBUSD(b0, c0) TILEKIT_VNNI_DPBUSD(b1, c1)
        : [c0] "+v"(c0), [c1] "+v"(c1)
        : [b0] "v"(b[0]), [b1] "v"(b[1]), [a] "m"(*reinterpret_cast<const int32_t*>(a)));
  }
}
#undef TILEKIT_VNNI_DPBUSD

// The int32 sums of row R (four vectors: two per panel) are named variables
// declared for every row and used only where the tile has that row (arrays of
// vectors are not kept in registers reliably). The fp32 results wait in `c`
// (L1), updated once per sub-group, so the sums alone fill the registers:
// 6 rows × 4 vectors + 4 weight vectors, and per K step 4 weight loads and 6
// broadcast loads feed 24 vpdpbusd.
#define TILEKIT_VNNI_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5)
#define TILEKIT_VNNI_ZERO(R) \
  if constexpr (kRows > R) i##R##0 = i##R##1 = i##R##2 = i##R##3 = _mm512_setzero_si512();
#define TILEKIT_VNNI_DOT(R) \
  if constexpr (kRows > R) DotBroadcast<kPanels>(a + R * t.kp + s, bv, i##R##0, i##R##1, i##R##2, i##R##3);
#define TILEKIT_VNNI_SCALE_ONE(R, V, W)                                                                   \
  {                                                                                                        \
    float* cp = t.c + R * 64 + V * 16;                                                                    \
    const __m512 prod = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(i##R##V, corr)), W);           \
    _mm512_storeu_ps(cp, _mm512_fmadd_ps(prod, sa, _mm512_loadu_ps(cp)));                                 \
  }
#define TILEKIT_VNNI_SCALE(R)                                                     \
  if constexpr (kRows > R) {                                                      \
    const size_t at = R * t.a_subgroups + j;                                      \
    const __m512i corr = _mm512_set1_epi32(t.zero * t.a_sum[at]);                 \
    const __m512 sa = _mm512_set1_ps(t.a_scale[at]);                              \
    TILEKIT_VNNI_SCALE_ONE(R, 0, w0) TILEKIT_VNNI_SCALE_ONE(R, 1, w1)             \
    if constexpr (kPanels == 2) {                                                 \
      TILEKIT_VNNI_SCALE_ONE(R, 2, w2) TILEKIT_VNNI_SCALE_ONE(R, 3, w3)           \
    }                                                                             \
  }

template <int kRows, int kPanels>
TILEKIT_VNNI_TARGET __attribute__((noinline)) void VnniTile(const VnniTileArgs& t) {
  static_assert(kRows >= 1 && kRows <= static_cast<int>(kVnniMR), "rows 0-5 are declared");
  __m512i i00, i01, i02, i03, i10, i11, i12, i13, i20, i21, i22, i23;
  __m512i i30, i31, i32, i33, i40, i41, i42, i43, i50, i51, i52, i53;
  const uint8_t* b0 = t.b[0];
  const uint8_t* b1 = t.b[kPanels - 1];
  for (size_t j = 0; j < t.subgroups; ++j) {
    TILEKIT_VNNI_ROWS(TILEKIT_VNNI_ZERO)
    const int8_t* a = t.a + j * t.sg;
    for (size_t s = 0; s < t.sg; s += 4, b0 += 128, b1 += 128) {
      __m512i bv[4];
      bv[0] = _mm512_loadu_si512(b0);
      bv[1] = _mm512_loadu_si512(b0 + 64);
      if constexpr (kPanels == 2) {
        bv[2] = _mm512_loadu_si512(b1);
        bv[3] = _mm512_loadu_si512(b1 + 64);
      }
      TILEKIT_VNNI_ROWS(TILEKIT_VNNI_DOT)
    }
    const __m512 w0 = _mm512_loadu_ps(t.w_scale[0][j]), w1 = _mm512_loadu_ps(t.w_scale[0][j] + 16);
    __m512 w2 = w0, w3 = w1;
    if constexpr (kPanels == 2) {
      w2 = _mm512_loadu_ps(t.w_scale[1][j]);
      w3 = _mm512_loadu_ps(t.w_scale[1][j] + 16);
    }
    (void)w2, (void)w3;
    TILEKIT_VNNI_ROWS(TILEKIT_VNNI_SCALE)
  }
}
#undef TILEKIT_VNNI_ZERO
#undef TILEKIT_VNNI_DOT
#undef TILEKIT_VNNI_SCALE_ONE
#undef TILEKIT_VNNI_SCALE
#undef TILEKIT_VNNI_ROWS

template <int kPanels, int... kRows>
inline void RunVnniTile(size_t rows, const VnniTileArgs& t, std::integer_sequence<int, kRows...>) {
  using Kernel = void (*)(const VnniTileArgs&);
  static constexpr Kernel kKernels[] = {&VnniTile<kRows + 1, kPanels>...};
  kKernels[rows - 1](t);
}

// The workspace of the VNNI loops: the quantized A block, its scales and sums,
// the partial sums of two panels, and their moved weight slices.
struct VnniWorkspace {
  size_t mc, kp, sg, subgroups, kc;
  explicit VnniWorkspace(const GemmPlan& p)
      : mc(p.mc), kp(round_up(p.k, p.group)), sg(int8_act_subgroup(p.group)), subgroups(kp / sg), kc(p.kc) {}
  size_t a_bytes() const { return round_up(mc * kp, 64); }
  size_t meta_bytes() const { return round_up(mc * subgroups * 8, 64); }
  size_t c_bytes() const { return round_up(mc * 2 * kVnniNR * sizeof(float), 64); }
  size_t b_bytes() const { return 2 * kc * kVnniNR; }
  size_t floats() const { return (a_bytes() + meta_bytes() + c_bytes() + b_bytes()) / sizeof(float) + 16; }
};

template <bool kInt4>
TILEKIT_VNNI_TARGET void VnniRangeT(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  const VnniWorkspace w(p);
  unsigned char* base = reinterpret_cast<unsigned char*>(ws);
  const Int8Rows a_q{reinterpret_cast<int8_t*>(base),
                     w.kp,
                     reinterpret_cast<float*>(base + w.a_bytes()),
                     reinterpret_cast<int32_t*>(base + w.a_bytes() + w.mc * w.subgroups * sizeof(float)),
                     w.subgroups,
                     w.sg,
                     w.subgroups};
  float* c_ws = reinterpret_cast<float*>(base + w.a_bytes() + w.meta_bytes());
  uint8_t* slices = base + w.a_bytes() + w.meta_bytes() + w.c_bytes();
  const size_t g = p.group, row_bytes = kInt4 ? kVnniNR / 2 : kVnniNR;
  const size_t group_bytes = g * row_bytes + kVnniNR * sizeof(float);
  const auto epilogue = TILEKIT_DISPATCH_ON(p.isa, GemmEpilogueTile);
  const auto quantize = TILEKIT_DISPATCH_ON(p.isa, QuantizeActInt8);
  const size_t a_elem = p.a_bf16 ? sizeof(bf16) : sizeof(float);
  VnniTileArgs t;
  t.kp = w.kp;
  t.a_subgroups = w.subgroups;
  t.sg = w.sg;
  t.zero = kInt4 ? 8 : 128;
  for (size_t ic = r0; ic < r1; ic += p.mc) {
    const size_t rows = std::min(p.mc, r1 - ic);
    quantize(static_cast<const unsigned char*>(p.a) + ic * p.lda * a_elem, p.a_bf16, p.lda, rows, p.k, a_q);
    // Two panels at a time (the last alone when their count is odd): a tile
    // of 4 vectors of sums per row needs 4 weight loads per 24 vpdpbusd.
    for (size_t pb = p0; pb < p1;) {
      const size_t panels = std::min<size_t>(2, p1 - pb);
      std::memset(c_ws, 0, rows * 2 * kVnniNR * sizeof(float));
      for (size_t pc = 0; pc < w.kp; pc += p.kc) {
        const size_t kc = std::min(p.kc, w.kp - pc);
        t.subgroups = kc / w.sg;
        for (size_t q = 0; q < panels; ++q) {
          const uint8_t* panel = p.b + (pb + q) * p.panel_bytes;
          t.b[q] = slices + q * p.kc * kVnniNR;
          RelayoutSlice<kInt4>(panel, g, row_bytes, group_bytes, pc, pc + kc, slices + q * p.kc * kVnniNR);
          for (size_t j = 0; j < t.subgroups; ++j) {
            t.w_scale[q][j] =
                reinterpret_cast<const float*>(panel + ((pc + j * w.sg) / g) * group_bytes + g * row_bytes);
          }
        }
        for (size_t ir = 0; ir < rows; ir += kVnniMR) {
          const size_t tile_rows = std::min(kVnniMR, rows - ir);
          t.a = a_q.q + ir * w.kp + pc;
          t.a_scale = a_q.scale + ir * w.subgroups + pc / w.sg;
          t.a_sum = a_q.sum + ir * w.subgroups + pc / w.sg;
          t.c = c_ws + ir * 2 * kVnniNR;
          if (panels == 2) {
            RunVnniTile<2>(tile_rows, t, std::make_integer_sequence<int, kVnniMR>());
          } else {
            RunVnniTile<1>(tile_rows, t, std::make_integer_sequence<int, kVnniMR>());
          }
        }
      }
      // K = 0 runs no block: the epilogue of the zeroed sums.
      for (size_t q = 0; q < panels; ++q) {
        const PanelColumns cols = panel_columns(p, pb + q, kVnniNR);
        epilogue(c_ws + q * kVnniNR, 2 * kVnniNR, rows, *cols.seg, ic, cols.col, cols.cols, p.c_bf16);
      }
      pb += panels;
    }
  }
}

inline void VnniRange(const GemmPlan& p, size_t r0, size_t r1, size_t p0, size_t p1, float* ws) {
  if (p.b_type == WeightType::kInt4) return VnniRangeT<true>(p, r0, r1, p0, p1, ws);
  VnniRangeT<false>(p, r0, r1, p0, p1, ws);
}

// --- The record. -------------------------------------------------------------

inline bool vnni_path(Isa isa) {
  return (isa == Isa::kAvx512 || isa == Isa::kAvx512Bf16 || isa == Isa::kAmx) && cpu::features().avx512_vnni;
}

inline bool vnni_layout(Isa isa, WeightType type, const PackShape& shape, PanelLayout* l) {
  if (!quant_layout(isa, type, shape, l) || l->nr != kVnniNR) return false;
  set_int8_act(l);
  return true;
}

inline size_t vnni_mr(Isa isa) { return std::max(kVnniMR, quant_mr(isa)); }

// Few rows: the weight-only kernel's blocking. Many: int8_act_block's, K in
// blocks of kVnniKc.
inline void vnni_block(GemmPlan& p, const PanelLayout& l, size_t mr) {
  if (p.m < kInt8ActMinRows) return quant_block(p, l, mr);
  int8_act_block(p, l, kVnniMR, kVnniKc);
}

inline size_t vnni_workspace_floats(const GemmPlan& p, const PanelLayout& l, size_t mr) {
  if (p.m < kInt8ActMinRows) return quant_workspace_floats(p, l, mr);
  return VnniWorkspace(p).floats();
}

inline GemmRangeFn vnni_range(Isa isa, const GemmPlan& p) {
  return p.m < kInt8ActMinRows ? quant_range(isa, p) : &VnniRange;
}

inline constexpr GemmKernel kQuantVnniGemm{"quant_vnni",      &vnni_path, &vnni_layout,
                                           &quant_offset,     &vnni_mr,   &vnni_block,
                                           &vnni_workspace_floats, &vnni_range, /*rows_first=*/false,
                                           &quant_pack};

}  // namespace detail
}  // namespace tilekit

#endif  // TILEKIT_ARCH_X86
#endif  // TILEKIT_GEMM_QUANT_VNNI_H_
