// AVX2 helpers shared by the AVX2 kernel files of this folder (and only by them: they are
// compiled with the same flags), among them the tile-running loop of both matmul files. Internal linkage, so no other translation unit can pick
// up these copies.
#pragma once
#include <immintrin.h>
#include <stdint.h>

namespace {

inline int32_t ld32(const uint8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline float ldf(const uint8_t* p) {
  float v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline __m256i bcast(const uint8_t* p) { return _mm256_set1_epi32(ld32(p)); }
inline __m256i load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256 load_f16x8(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256i mask_rows(int64_t left) {  // lanes r < left
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Bytes of weights prefetched ahead of the block in use (tuned on Zen 3).
constexpr int kAhead = 1536;
inline void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
inline void prefetch_block(const uint8_t* p, int bytes) {
  for (int l = 0; l < bytes; l += 64) prefetch(p + l);
}

// Tile<K>::run for the K = left tokens that remain after the full tiles (0 < left < TT).
template <template <int> class Tile, int K>
inline void run_rest(int64_t left, const uint8_t* wg, int h, int64_t nb, const uint8_t* x, int64_t xrow, float* y,
                     int64_t ldy, __m256i mask, const uint8_t* pf) {
  if constexpr (K > 0) {
    if (left == K) Tile<K>::run(wg, h, nb, x, xrow, y, ldy, mask, pf);
    else run_rest<Tile, K - 1>(left, wg, h, nb, x, xrow, y, ldy, mask, pf);
  }
}

// Runs Tile<T>::run(wg, h, nb, x, xrow, y, ldy, mask, pf) over the 16-row groups [g0, g1),
// each as two halves of 8 rows (h = 0, 1), and all n tokens: tiles of TT tokens, then one
// of the remaining 1..TT-1. Each token's sums are formed the same way whatever T, so the
// bits do not depend on n. pf (null for full tiles): the weights to prefetch alongside, at
// the same block offsets. A few tokens (a batch of decode steps) are bound by the weight
// stream: the first half prefetches its blocks kAhead ahead, and the second half (whose
// lines the first one brought in) the next group's, so that the stream does not pause.
template <template <int> class Tile, int TT>
void run_tiles(const uint8_t* w, int64_t group_bytes, const uint8_t* x, int64_t xrow, int64_t nb, int64_t n,
               float* y, int64_t ldy, int64_t g0, int64_t g1, int64_t rlimit) {
  for (int64_t g = g0; g < g1; g++)
    for (int h = 0; h < 2; h++) {
      int64_t left = rlimit - g * 16 - 8 * h;
      if (left <= 0) break;
      const uint8_t* wg = w + g * group_bytes;
      __m256i mask = mask_rows(left);
      float* yg = y + g * 16 + 8 * h;
      const uint8_t* pf = n >= TT ? nullptr : h == 0 ? wg + kAhead : wg + group_bytes;
      int64_t t = 0;
      for (; t + TT <= n; t += TT) Tile<TT>::run(wg, h, nb, x + t * xrow, xrow, yg + t * ldy, ldy, mask, nullptr);
      if (t < n) run_rest<Tile, TT - 1>(n - t, wg, h, nb, x + t * xrow, xrow, yg + t * ldy, ldy, mask, pf);
    }
}

}  // namespace
