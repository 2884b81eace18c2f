// The part of an x86 sparse kernel file that does not depend on its ISA: the loop over the
// 128-row groups of a call (one tile per group, T = n tokens) and the extern "C" entry
// points of the ten types. Plain C++ with internal linkage (an anonymous namespace), so each
// ISA file that includes it compiles its own copy with its own flags and no other file can
// pick that copy up. The including file defines, in its anonymous namespace, the tiles
// Tile32<T, Variant> and TileK<T, Bits> (T tokens; `run(group, next group or null, blocks,
// activations, activation row bytes, y, ldy, rows left)` returning the bytes read) and the
// variants vQ4_0 .. vMx with Var32<V>::kBlock; then it writes SP_SPARSE_ENTRIES(isa).
#pragma once
#include <stdint.h>

namespace {

template <template <int> class Tile>
uint64_t run_groups(const uint8_t* w, int64_t group_bytes, int64_t nb, const uint8_t* x, int64_t xrow, int64_t n,
                    float* y, int64_t ldy, int64_t g0, int64_t g1, int64_t rlimit) {
  uint64_t bytes = 0;
  for (int64_t g = g0; g < g1; g++) {
    const uint8_t* wg = w + g * group_bytes;
    float* yg = y + g * sparrow::kSparseRows;
    const int64_t left = rlimit - g * sparrow::kSparseRows;
    const uint8_t* next = g + 1 < g1 ? wg + group_bytes : nullptr;  // prefetched at the end of this group
    switch (n) {
      case 1: bytes += Tile<1>::run(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 2: bytes += Tile<2>::run(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 3: bytes += Tile<3>::run(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 4: bytes += Tile<4>::run(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 5: bytes += Tile<5>::run(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 6: bytes += Tile<6>::run(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 7: bytes += Tile<7>::run(wg, next, nb, x, xrow, yg, ldy, left); break;
      case 8: bytes += Tile<8>::run(wg, next, nb, x, xrow, yg, ldy, left); break;
      default: break;
    }
  }
  return bytes;
}

}  // namespace

// One entry point: `cols` split into blocks of `block_cols`, `block` weight bytes per block
// and group, `xbytes` activation bytes per block (BlockQ8A: 40, BlockQ8KA: 308).
#define SP_SPARSE_ENTRY(name, isa, tile, block_cols, block, xbytes)                                       \
  extern "C" uint64_t sp_smm_##name##_##isa(SP_SMM_ARGS) {                                             \
    const int64_t nb = cols / (block_cols);                                                            \
    return run_groups<tile>(w, nb * (block), nb, static_cast<const uint8_t*>(xq), nb * (xbytes), n, y, ldy, \
                            g0, g1, rlimit);                                                           \
  }

#define SP_SPARSE_ENTRIES(isa)                                                                \
  namespace {                                                                                 \
  template <int T> struct Q4_0Tile : Tile32<T, vQ4_0> {};                                     \
  template <int T> struct Q8_0Tile : Tile32<T, vQ8_0> {};                                     \
  template <int T> struct Q4_1Tile : Tile32<T, vQ4_1> {};                                     \
  template <int T> struct Q5_0Tile : Tile32<T, vQ5_0> {};                                     \
  template <int T> struct Q5_1Tile : Tile32<T, vQ5_1> {};                                     \
  template <int T> struct IQ4_NLTile : Tile32<T, vIQ4> {};                                    \
  template <int T> struct MXFP4Tile : Tile32<T, vMx> {};                                      \
  template <int T> struct Q4_KTile : TileK<T, 4> {};                                          \
  template <int T> struct Q5_KTile : TileK<T, 5> {};                                          \
  template <int T> struct Q6_KTile : TileK<T, 6> {};                                          \
  }                                                                                           \
  SP_SPARSE_ENTRY(q4_0, isa, Q4_0Tile, 32, sparrow::kSparseQ4_0Block, 40)                     \
  SP_SPARSE_ENTRY(q8_0, isa, Q8_0Tile, 32, sparrow::kSparseQ8_0Block, 40)                     \
  SP_SPARSE_ENTRY(q4_k, isa, Q4_KTile, 256, sparrow::kSparseQ4_KBlock, 308)                   \
  SP_SPARSE_ENTRY(q5_k, isa, Q5_KTile, 256, sparrow::kSparseQ5_KBlock, 308)                   \
  SP_SPARSE_ENTRY(q6_k, isa, Q6_KTile, 256, sparrow::kSparseQ6_KBlock, 308)                   \
  SP_SPARSE_ENTRY(q4_1, isa, Q4_1Tile, 32, Var32<vQ4_1>::kBlock, 40)                          \
  SP_SPARSE_ENTRY(q5_0, isa, Q5_0Tile, 32, Var32<vQ5_0>::kBlock, 40)                          \
  SP_SPARSE_ENTRY(q5_1, isa, Q5_1Tile, 32, Var32<vQ5_1>::kBlock, 40)                          \
  SP_SPARSE_ENTRY(iq4_nl, isa, IQ4_NLTile, 32, Var32<vIQ4>::kBlock, 40)                       \
  SP_SPARSE_ENTRY(mxfp4, isa, MXFP4Tile, 32, Var32<vMx>::kBlock, 40)
