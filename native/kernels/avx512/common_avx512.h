// AVX-512 helpers shared by the AVX-512 matmul files of this folder (and only by them:
// they are compiled with the same flags): loads, the vpdpbusd chain, and the loop that
// runs a 16-row x T-token tile over all groups and tokens. Internal linkage (anonymous
// namespace), so no other translation unit can pick up these copies.
#pragma once
#include <immintrin.h>
#include <stdint.h>

namespace {

// Software prefetch distance for the weight stream (bytes ahead of the block in use).
constexpr int kAhead = 2048;

inline int32_t ld32(const uint8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline int16_t ld16(const uint8_t* p) {
  int16_t v;
  __builtin_memcpy(&v, p, 2);
  return v;
}
inline float ldf(const uint8_t* p) {
  float v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline __m512i bcast(const uint8_t* p) { return _mm512_set1_epi32(ld32(p)); }
inline __m512i load(const uint8_t* p) { return _mm512_loadu_si512(reinterpret_cast<const void*>(p)); }
inline __m512 load_f16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
// Lanes i < left of 16 (left > 0).
inline __mmask16 mask16(int64_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }
// sum over k = 0..7 of vpdpbusd(w[k], the 4 activation bytes at q + 4k), in two chains
inline __m512i dot8(const __m512i* w, const uint8_t* q) {
  __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], bcast(q));
  __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[1], bcast(q + 4));
  s0 = _mm512_dpbusd_epi32(s0, w[2], bcast(q + 8));
  s1 = _mm512_dpbusd_epi32(s1, w[3], bcast(q + 12));
  s0 = _mm512_dpbusd_epi32(s0, w[4], bcast(q + 16));
  s1 = _mm512_dpbusd_epi32(s1, w[5], bcast(q + 20));
  s0 = _mm512_dpbusd_epi32(s0, w[6], bcast(q + 24));
  s1 = _mm512_dpbusd_epi32(s1, w[7], bcast(q + 28));
  return _mm512_add_epi32(s0, s1);
}
// sum over i = 0..3 of vpdpbusd(w[i], the 4 activation bytes at q + 4i), in two chains
inline __m512i dot4(const __m512i* w, const uint8_t* q) {
  __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[0], bcast(q));
  __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w[1], bcast(q + 4));
  s0 = _mm512_dpbusd_epi32(s0, w[2], bcast(q + 8));
  s1 = _mm512_dpbusd_epi32(s1, w[3], bcast(q + 12));
  return _mm512_add_epi32(s0, s1);
}

// Runs Tile<T>::run(wg, nb, x, xrow, y, ldy, mask) over all groups [g0, g1) and all n
// tokens: tiles of 8 tokens, then one tile of the remaining 1..7. Each token's sums
// are formed the same way whatever T, so the bits do not depend on n.
template <template <int> class Tile>
void run_tiles(const uint8_t* w, int64_t group_bytes, const uint8_t* x, int64_t xrow, int64_t nb, int64_t n,
               float* y, int64_t ldy, int64_t g0, int64_t g1, int64_t rlimit) {
  for (int64_t g = g0; g < g1; g++) {
    const uint8_t* wg = w + g * group_bytes;
    int64_t left = rlimit - g * 16;
    __mmask16 mask = mask16(left);
    float* yg = y + g * 16;
    int64_t t = 0;
    for (; t + 8 <= n; t += 8) Tile<8>::run(wg, nb, x + t * xrow, xrow, yg + t * ldy, ldy, mask);
    const uint8_t* xt = x + t * xrow;
    float* yt = yg + t * ldy;
    switch (n - t) {
      case 1: Tile<1>::run(wg, nb, xt, xrow, yt, ldy, mask); break;
      case 2: Tile<2>::run(wg, nb, xt, xrow, yt, ldy, mask); break;
      case 3: Tile<3>::run(wg, nb, xt, xrow, yt, ldy, mask); break;
      case 4: Tile<4>::run(wg, nb, xt, xrow, yt, ldy, mask); break;
      case 5: Tile<5>::run(wg, nb, xt, xrow, yt, ldy, mask); break;
      case 6: Tile<6>::run(wg, nb, xt, xrow, yt, ldy, mask); break;
      case 7: Tile<7>::run(wg, nb, xt, xrow, yt, ldy, mask); break;
      default: break;
    }
  }
}

}  // namespace
