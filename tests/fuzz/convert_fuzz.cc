// convert_f32_to_bf16 and convert_bf16_to_f32 from arbitrary bytes: the values
// are the fuzzer's own bits (NaN payloads, denormals, Inf, ties), n from 0 up
// and past what size_t can count in bytes, in and out placed anywhere in one
// arena (apart, touching, overlapping), on any path.
//
// Differential: every element bit-exact against the scalar conversion of
// base/bf16.h. A refused call (overlap, overflow, null) leaves the arena as it was.
#include "fuzz.h"

namespace tilekit {
namespace {

void Run(FuzzedDataProvider& in) {
  fuzz::Force(fuzz::PickPath(in));
  const bool to_bf16 = in.ConsumeBool();
  const size_t n = in.ConsumeIntegralInRange<int>(0, 15) == 0 ? fuzz::HugeDim(in) : fuzz::Dim(in, 700);
  const bool huge = n > 4096;
  // One arena of 4-byte slots; in and out at slot offsets (bf16 may also sit at
  // half a slot), possibly overlapping.
  const size_t slots = huge ? 64 : 2 * n + 8;
  std::vector<uint32_t> arena(slots);
  for (uint32_t& v : arena) v = in.ConsumeIntegral<uint32_t>();
  const size_t in_at = in.ConsumeIntegralInRange<size_t>(0, slots - 1);
  const size_t out_at = in.ConsumeIntegralInRange<size_t>(0, slots - 1);
  const size_t in_bytes = huge ? 0 : n * (to_bf16 ? 4 : 2), out_bytes = huge ? 0 : n * (to_bf16 ? 2 : 4);
  const bool null_in = in.ConsumeIntegralInRange<int>(0, 31) == 0, null_out = in.ConsumeIntegralInRange<int>(0, 31) == 0;
  unsigned char* base = reinterpret_cast<unsigned char*>(arena.data());
  const size_t arena_bytes = slots * 4;
  // Offsets that would run past the arena with a real n: skip (not the library's fault).
  if (!huge && (in_at * 4 + in_bytes > arena_bytes || out_at * 4 + out_bytes > arena_bytes)) return;
  const bool overlap = !huge && n > 0 && in_at * 4 < out_at * 4 + out_bytes && out_at * 4 < in_at * 4 + in_bytes;
  const bool must_fail = n > 0 && (huge || overlap || null_in || null_out);

  const std::vector<uint32_t> before = arena;
  Status s;
  if (to_bf16) {
    s = convert_f32_to_bf16(null_in ? nullptr : reinterpret_cast<const float*>(base + in_at * 4),
                            null_out ? nullptr : reinterpret_cast<bf16*>(base + out_at * 4), n);
  } else {
    s = convert_bf16_to_f32(null_in ? nullptr : reinterpret_cast<const bf16*>(base + in_at * 4),
                            null_out ? nullptr : reinterpret_cast<float*>(base + out_at * 4), n);
  }
  if (must_fail) {
    TILEKIT_FUZZ_CHECK(s != Status::kOk, "n=%zu overlap %d null %d/%d accepted", n, overlap, null_in, null_out);
    TILEKIT_FUZZ_CHECK(arena == before, "refused conversion (%s) wrote", status_name(s));
    return;
  }
  TILEKIT_FUZZ_CHECK(s == Status::kOk, "n=%zu refused: %s", n, status_name(s));
  const unsigned char* old = reinterpret_cast<const unsigned char*>(before.data());
  for (size_t i = 0; i < n; ++i) {
    if (to_bf16) {
      float x;
      uint16_t got;
      std::memcpy(&x, old + in_at * 4 + 4 * i, 4);
      std::memcpy(&got, base + out_at * 4 + 2 * i, 2);
      TILEKIT_FUZZ_CHECK(got == f32_to_bf16(x).bits, "element %zu of %zu: 0x%04x, scalar 0x%04x", i, n, got,
                         f32_to_bf16(x).bits);
    } else {
      bf16 x;
      uint32_t got, want;
      std::memcpy(&x.bits, old + in_at * 4 + 2 * i, 2);
      std::memcpy(&got, base + out_at * 4 + 4 * i, 4);
      const float w = bf16_to_f32(x);
      std::memcpy(&want, &w, 4);
      TILEKIT_FUZZ_CHECK(got == want, "element %zu of %zu: 0x%08x, scalar 0x%08x", i, n, got, want);
    }
  }
  // Nothing outside out was written.
  for (size_t b = 0; b < arena_bytes; ++b) {
    if (b >= out_at * 4 && b < out_at * 4 + out_bytes) continue;
    TILEKIT_FUZZ_CHECK(base[b] == old[b], "byte %zu outside the output written", b);
  }
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)
