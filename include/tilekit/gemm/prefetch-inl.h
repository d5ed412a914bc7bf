// Per-target: where the vector kernels' weights are asked for ahead of use.
// The weights stream from L3 or memory once per row block; these plans keep
// the slice a tile reads in L1 and the next ones arriving in L2 while it
// computes.
#if defined(TILEKIT_GEMM_PREFETCH_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef TILEKIT_GEMM_PREFETCH_INL_H_
#undef TILEKIT_GEMM_PREFETCH_INL_H_
#else
#define TILEKIT_GEMM_PREFETCH_INL_H_
#endif

#include <hwy/highway.h>

#include <cstddef>

HWY_BEFORE_NAMESPACE();
namespace tilekit {
namespace detail {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Lines a tile pulls into L2 during its k steps, one per step at most (one per
// 256 / rate steps): step k asks for line v = first + k · rate / 256 of a run
// from base: contiguous (stride 0), or kL2Streams streams stride bytes apart,
// taken in turn.
constexpr size_t kL2Streams = 8;
struct L2Lines {
  const unsigned char* base;
  size_t stride, first, rate;
  // The address step k asks for.
  const unsigned char* At(size_t k) const {
    const size_t v = first + ((k * rate) >> 8);
    if (!stride) return base + v * 64;
    return base + (v % kL2Streams) * stride + (v / kL2Streams) * 64;
  }
};

// Where a tile's weights come from: the kc × nr slice it reads and where its
// k steps prefetch (SlicePrefetch::L1Target).
template <typename TB>
struct PanelSlice {
  const TB* panel;
  const unsigned char* next;
  size_t row_bytes;
  L2Lines l2;
};

// Keeping the weights a tile needs close by. B slices are read from L3 or
// memory once per row block; the loops ask for them ahead, in one of two
// orders:
// - linear: the loops read B front to back, a panel's K blocks one after
//   another (one panel per group, or one K block per panel). While a panel is
//   computed, the next one is pulled into L2 as kL2Streams streams over equal
//   parts of it, each K block taking its share: one core draws memory faster
//   from several sequential streams than from one. Each tile streams its slice
//   into L1 kStreamAhead bytes ahead (one tile), or the last tile pulls the next
//   slice into L1 (several: the earlier ones re-touch their own slice, an L1
//   hit).
// - blocked (large M: a group of panels per K block, so A and the partial sums
//   stay in L2): the slice two panels ahead is pulled into L2 in equal shares
//   by the tiles of the current panel, and the panel's last tile pulls the next
//   slice into L1, so the next panel's first tile finds its slice in L1 and L1
//   holds at most two slices.
// Either way a tile's L2 share is spread over its k steps, one line per step:
// asked for in a burst at the start of the tile, a few hundred prefetches fill
// the line buffers and stall the FMAs until memory answers (at M = 32 a burst
// cost 25% of the speed).
constexpr size_t kStreamAhead = 4096;
struct SlicePrefetch {
  const unsigned char* slice;
  const unsigned char* next_slice;  // the slice read after this panel's
  L2Lines l2;                       // first = 0; tile t starts at t · lines_per_tile
  size_t lines_per_tile;
  size_t last_tile;
  bool stream;

  L2Lines L2Target(size_t tile) const {
    L2Lines t = l2;
    t.first = tile * lines_per_tile;
    return t;
  }
  const unsigned char* L1Target(size_t tile) const {
    // K = 0 packs no bytes: no slice (null), nothing ahead of it.
    if (stream) return slice ? slice + kStreamAhead : slice;
    return tile == last_tile ? next_slice : slice;
  }
};
// The slice of panel pb at K offset pc (kc deep) in either order; last_panel:
// the last of the thread's share (linear) or of the group (blocked).
inline SlicePrefetch PlanSlicePrefetch(const unsigned char* b, size_t pb, size_t pc, size_t kc, size_t k,
                                       size_t row_bytes, size_t panel_bytes, size_t tiles, size_t last_panel,
                                       bool linear) {
  SlicePrefetch pf;
  pf.slice = b + pb * panel_bytes + pc * row_bytes;
  pf.stream = tiles == 1;
  pf.last_tile = tiles - 1;
  const size_t slice_lines = (kc * row_bytes + 63) / 64;
  size_t lines = 0;  // to pull into L2 during this slice
  if (linear) {
    pf.next_slice = pc + kc < k ? pf.slice + kc * row_bytes : pb < last_panel ? b + (pb + 1) * panel_bytes : pf.slice;
    if (pb < last_panel) {
      // Stream i of the next panel covers K rows [i, i + 1) · k / kL2Streams;
      // this K block takes its kc / k share of each.
      const size_t part = k * row_bytes / kL2Streams;
      pf.l2 = L2Lines{b + (pb + 1) * panel_bytes + pc * row_bytes / kL2Streams, part, 0, 0};
      lines = kL2Streams * ((slice_lines + kL2Streams - 1) / kL2Streams);
    }
  } else {
    pf.next_slice = pb < last_panel ? pf.slice + panel_bytes : pf.slice;
    if (pb + 2 <= last_panel && !pf.stream) {
      pf.l2 = L2Lines{pf.slice + 2 * panel_bytes, 0, 0, 0};
      lines = slice_lines;
    }
  }
  if (lines == 0) pf.l2 = L2Lines{pf.slice, 0, 0, 0};  // nothing ahead: re-touch the slice (an L1 hit)
  // One row tile of fp32 (128-byte rows) has two lines per k step to fetch
  // and asks for every other one (with interleaved streams: streams 0, 2, 4,
  // 6). Asking for all of them (128-byte units, the adjacent-line prefetcher
  // completing each pair) measured no faster: 1.006x at M = 10, 0.94x at M = 4.
  pf.lines_per_tile = (lines + tiles - 1) / tiles;
  pf.l2.rate = (256 * pf.lines_per_tile + kc - 1) / HWY_MAX(kc, 1);
  return pf;
}

}  // namespace HWY_NAMESPACE
}  // namespace detail
}  // namespace tilekit
HWY_AFTER_NAMESPACE();

#endif  // TILEKIT_GEMM_PREFETCH_INL_H_
