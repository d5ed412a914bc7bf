// The SDOT micro-kernel and the weight-slice move (contract: arm_sdot_tile.h),
// written once against a target's vector primitives and compiled once per
// target: arm_sdot_neon.h and arm_sdot_sve.h include it inside their own
// namespace and `#pragma GCC target` region, as arm_bfmmla_tile-inl.h is.
// No include guard on purpose.
//
// Primitives the including target defines (a "vector" is 16 bytes on NEON,
// VL / 8 on SVE; nr = 2 · Lanes()):
//   VI, VF, VS, VU       int32, fp32, int8 and uint8 vectors
//   Lanes()              32-bit lanes of a vector
//   ZeroI(), ZeroF()
//   LoadS8(p)            one vector of int8
//   LoadA(p)             16 int8 (one A step of a tile) in every 128-bit segment
//   Dot<L>(acc, b, a)    acc + SDOT of b by 32-bit lane L of a's segments
//   LoadF(p), StoreF(p, v)
//   LoadQuadF(p)         4 fp32 (a tile's row scales) in every segment
//   ToFloat(v), Mul(x, y)
//   MulAddLane<L>(c, x, s)  c + x · (lane L of s's segments), fused
//   LoadU8(p), StoreU8(p, v)
//   Zip1(x, y), Zip2(x, y)  bytes of the low (high) halves of x and y, interleaved
//   Signed8(u)           stored int8 values to q (XOR 0x80)
//   Signed4(u, lo, hi)   the low and high nibbles of u as q (nibble - 8)
//   Transpose4(v)        bytes i·h + c (i < 4, c < h = vector bytes / 4) to 4c + i

// --- The weight slice. ------------------------------------------------------

// Each step reads 4 rows (4 K) of nr columns and writes them as 2 vectors of
// 4-byte column quads: for int8 two vectors of two rows each, interleaved by
// bytes twice (rows 0 and 2, 1 and 3, then the pairs); for int4 one vector
// of the 4 rows' nibbles, each half transposed. The rows of a sub-group are
// contiguous: sub-groups lie within one group.
template <bool kInt4>
void MoveSlice(const uint8_t* panel, size_t g, size_t sg, size_t k0, size_t k1, int8_t* out) {
  const size_t nr = 2 * Lanes(), vector_bytes = 2 * nr;
  const size_t row_bytes = kInt4 ? nr / 2 : nr, group_bytes = g * row_bytes + nr * sizeof(float);
  for (size_t k = k0; k < k1; k += sg) {
    const uint8_t* group = panel + (k / g) * group_bytes;
    const uint8_t* rows = group + (k % g) * row_bytes;
    for (size_t s = 0; s < sg; s += kSdotKR, rows += kSdotKR * row_bytes, out += 2 * vector_bytes) {
      if constexpr (kInt4) {
        VU lo, hi;
        Signed4(LoadU8(rows), lo, hi);
        StoreU8(out, Transpose4(lo));
        StoreU8(out + vector_bytes, Transpose4(hi));
      } else {
        const VU r01 = Signed8(LoadU8(rows)), r23 = Signed8(LoadU8(rows + vector_bytes));
        const VU r02 = Zip1(r01, r23), r13 = Zip2(r01, r23);
        StoreU8(out, Zip1(r02, r13));
        StoreU8(out + vector_bytes, Zip2(r02, r13));
      }
    }
    std::memcpy(out, group + g * row_bytes, nr * sizeof(float));
    out += nr * sizeof(float);
  }
}

// --- The tile. ----------------------------------------------------------------

// Row R's int32 sums sR0, sR1 and fp32 results cR0, cR1 (columns [0, nr/2)
// and [nr/2, nr)). Named variables, not arrays: SVE vectors are sizeless.
#define TILEKIT_SDOT_LOAD(R)                                         \
  if constexpr (kRows > R) {                                         \
    c##R##0 = t.first ? ZeroF() : LoadF(out + R * nr);               \
    c##R##1 = t.first ? ZeroF() : LoadF(out + R * nr + half);        \
  }
#define TILEKIT_SDOT_STEP(R)                 \
  if constexpr (kRows > R) {                 \
    s##R##0 = Dot<R>(s##R##0, b0, a);        \
    s##R##1 = Dot<R>(s##R##1, b1, a);        \
  }
#define TILEKIT_SDOT_SCALE(R)                                           \
  if constexpr (kRows > R) {                                            \
    c##R##0 = MulAddLane<R>(c##R##0, Mul(ToFloat(s##R##0), w0), sa);    \
    c##R##1 = MulAddLane<R>(c##R##1, Mul(ToFloat(s##R##1), w1), sa);    \
    s##R##0 = s##R##1 = ZeroI();                                        \
  }
#define TILEKIT_SDOT_STORE(R)                \
  if constexpr (kRows > R) {                 \
    StoreF(out + R * nr, c##R##0);           \
    StoreF(out + R * nr + half, c##R##1);    \
  }

// The sums of a sub-group stay in registers over its sg / 4 steps, then
// are scaled into the results, which stay in registers over the K block.
template <size_t kRows>
void SdotTile(const SdotTileArgs& t) {
  static_assert(kRows >= 1 && kRows <= kSdotMR, "accumulators are declared for 4 rows");
  const size_t half = Lanes(), nr = 2 * half, vector_bytes = 2 * nr;
  float* const out = t.c;  // a local: stores through it cannot change t
  VF c00 = ZeroF(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  VI s00 = ZeroI(), s01 = s00, s10 = s00, s11 = s00, s20 = s00, s21 = s00, s30 = s00, s31 = s00;
  TILEKIT_SDOT_LOAD(0) TILEKIT_SDOT_LOAD(1) TILEKIT_SDOT_LOAD(2) TILEKIT_SDOT_LOAD(3)
  const int8_t* b = t.b;
  const int8_t* a_step = t.a;
  for (size_t j = 0; j < t.subgroups; ++j) {
    for (size_t s = 0; s < t.sg; s += kSdotKR, a_step += kSdotAStep, b += 2 * vector_bytes) {
      const VS a = LoadA(a_step), b0 = LoadS8(b), b1 = LoadS8(b + vector_bytes);
      TILEKIT_SDOT_STEP(0) TILEKIT_SDOT_STEP(1) TILEKIT_SDOT_STEP(2) TILEKIT_SDOT_STEP(3)
    }
    const float* w = reinterpret_cast<const float*>(b);
    const VF w0 = LoadF(w), w1 = LoadF(w + half), sa = LoadQuadF(t.a_scale + j * kSdotMR);
    b += nr * sizeof(float);
    TILEKIT_SDOT_SCALE(0) TILEKIT_SDOT_SCALE(1) TILEKIT_SDOT_SCALE(2) TILEKIT_SDOT_SCALE(3)
  }
  TILEKIT_SDOT_STORE(0) TILEKIT_SDOT_STORE(1) TILEKIT_SDOT_STORE(2) TILEKIT_SDOT_STORE(3)
}

#undef TILEKIT_SDOT_LOAD
#undef TILEKIT_SDOT_STEP
#undef TILEKIT_SDOT_SCALE
#undef TILEKIT_SDOT_STORE

static_assert(kSdotMR == 4, "Kernel() lists one tile per row count");

inline SdotKernel Kernel() {
  return SdotKernel{{&SdotTile<1>, &SdotTile<2>, &SdotTile<3>, &SdotTile<4>},
                    &MoveSlice<false>,
                    &MoveSlice<true>,
                    2 * Lanes()};
}
