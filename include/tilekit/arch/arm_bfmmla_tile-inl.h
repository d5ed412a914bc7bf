// The BFMMLA micro-kernel (contract: arm_bfmmla_tile.h), written once against a
// target's vector primitives and compiled once per target: arm_bfmmla_neon.h
// and arm_bfmmla_sve.h include it inside their own namespace and
// `#pragma GCC target` region. (A template cannot take its target attribute
// from a parameter, and BF16 intrinsics do not inline into a function built for
// a lesser target, so the text is instantiated per target, as Highway does.)
// No include guard on purpose.
//
// Primitives the including target defines:
//   VF, VB           fp32 accumulator vector, bf16 operand vector
//   Zero()           VF of zeros
//   LoadA(p)         one packed A row pair (8 bf16) in every 128-bit segment
//   LoadB(p)         one B vector: VL/128 column pairs of a k-block
//   Mmla(c, a, b)    c + BFMMLA(a, b)
//   PanelColumns()   nr of the panels this target reads
//   StoreRows(c0, c1, row0, row1)  accumulators c0, c1 (B vectors 2j, 2j+1 of
//                    one row pair: nr/2 consecutive columns) to the pair's two
//                    rows in row-major memory; row1 null when past M
//   LoadRows(row0, row1, c0, c1)   the inverse; row1 null reads zeros

// Row pair P's four accumulators: cP0..cP3, one per B vector. Named variables,
// not an array: SVE vectors are sizeless and cannot form arrays.
#define TILEKIT_BFMMLA_ROWS(P)                           \
  float* const row##P = c + 2 * P * ldc;                 \
  float* const next##P = 2 * P + 1 < rows ? row##P + ldc : nullptr;
#define TILEKIT_BFMMLA_LOAD(P)                                                         \
  if constexpr (kRowPairs > P) {                                                       \
    TILEKIT_BFMMLA_ROWS(P)                                                             \
    LoadRows(row##P, next##P, c##P##0, c##P##1);                                       \
    LoadRows(row##P + half, next##P ? next##P + half : nullptr, c##P##2, c##P##3);     \
  }
#define TILEKIT_BFMMLA_STEP(P)                                   \
  if constexpr (kRowPairs > P) {                                 \
    const VB a##P = LoadA(a + P * kBfmmlaPairElems);             \
    c##P##0 = Mmla(c##P##0, a##P, b0);                           \
    c##P##1 = Mmla(c##P##1, a##P, b1);                           \
    c##P##2 = Mmla(c##P##2, a##P, b2);                           \
    c##P##3 = Mmla(c##P##3, a##P, b3);                           \
  }
#define TILEKIT_BFMMLA_STORE(P)                                                        \
  if constexpr (kRowPairs > P) {                                                       \
    TILEKIT_BFMMLA_ROWS(P)                                                             \
    StoreRows(c##P##0, c##P##1, row##P, next##P);                                      \
    StoreRows(c##P##2, c##P##3, row##P + half, next##P ? next##P + half : nullptr);    \
  }

// Each k-block loads 4 B vectors and kRowPairs A quadwords for 4·kRowPairs
// BFMMLAs; the whole K range stays in registers, C is touched once each way.
template <size_t kRowPairs>
void BfmmlaTile(size_t kblocks, const uint16_t* a, const uint16_t* b, float* c, size_t ldc, size_t rows,
                bool accumulate) {
  static_assert(kRowPairs >= 1 && kRowPairs <= 4, "accumulators are declared for 4 row pairs");
  const size_t nr = PanelColumns(), half = nr / 2;
  VF c00 = Zero(), c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  VF c20 = c00, c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  if (accumulate) {
    TILEKIT_BFMMLA_LOAD(0) TILEKIT_BFMMLA_LOAD(1) TILEKIT_BFMMLA_LOAD(2) TILEKIT_BFMMLA_LOAD(3)
  }
  for (size_t kb = 0; kb < kblocks; ++kb) {
    const VB b0 = LoadB(b), b1 = LoadB(b + nr), b2 = LoadB(b + 2 * nr), b3 = LoadB(b + 3 * nr);
    TILEKIT_BFMMLA_STEP(0) TILEKIT_BFMMLA_STEP(1) TILEKIT_BFMMLA_STEP(2) TILEKIT_BFMMLA_STEP(3)
    a += kRowPairs * kBfmmlaPairElems;
    b += kBfmmlaKR * nr;
  }
  TILEKIT_BFMMLA_STORE(0) TILEKIT_BFMMLA_STORE(1) TILEKIT_BFMMLA_STORE(2) TILEKIT_BFMMLA_STORE(3)
}

#undef TILEKIT_BFMMLA_ROWS
#undef TILEKIT_BFMMLA_LOAD
#undef TILEKIT_BFMMLA_STEP
#undef TILEKIT_BFMMLA_STORE

static_assert(kBfmmlaMaxRowPairs == 4, "Kernel() lists one tile per row-pair count");

inline BfmmlaKernel Kernel() {
  return BfmmlaKernel{{&BfmmlaTile<1>, &BfmmlaTile<2>, &BfmmlaTile<3>, &BfmmlaTile<4>}, PanelColumns()};
}
