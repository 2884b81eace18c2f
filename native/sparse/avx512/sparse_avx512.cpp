// AVX-512 (F, BW, VL, VNNI) sparse matmul kernels over the channel-major layouts of
// sparse/layout.h. extern "C" entry points only; helpers have internal linkage.
//
// Per 128-row group and block: the active channels (int8 activation nonzero in some token)
// are found with one compare per token; they are taken four at a time: the four channel
// vectors (64 rows each) are interleaved with unpacklo/hi_epi8 and _epi16 into four
// vectors whose 32-bit lane holds one row's four quants (the layout's slot order makes
// the lanes rows 16j..16j+15 in order), and vpdpbusd adds them times the four channels'
// activation bytes into each row's int32 sum. Channels beyond the last active one in a
// quad repeat it with activation 0. Per block and 16 rows the float step is the dense
// AVX-512 kernel's (kernels/avx512/matmul_avx512.cpp): acc = fma(float(s - off*sx) * d, dx,
// acc), so the result is bit-identical to it.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU
#include "sparse/layout.h"
#include "sparse/sparse_kernels.h"

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
inline __m512i load(const uint8_t* p) { return _mm512_loadu_si512(reinterpret_cast<const void*>(p)); }

// Interleaves four channel vectors a, b, c, d (64 rows in layout slot order) into
// out[j]: lane i = bytes (a, b, c, d) of row 16j + i.
inline void interleave4(__m512i a, __m512i b, __m512i c, __m512i d, __m512i out[4]) {
  const __m512i ab_lo = _mm512_unpacklo_epi8(a, b), ab_hi = _mm512_unpackhi_epi8(a, b);
  const __m512i cd_lo = _mm512_unpacklo_epi8(c, d), cd_hi = _mm512_unpackhi_epi8(c, d);
  out[0] = _mm512_unpacklo_epi16(ab_lo, cd_lo);
  out[1] = _mm512_unpackhi_epi16(ab_lo, cd_lo);
  out[2] = _mm512_unpacklo_epi16(ab_hi, cd_hi);
  out[3] = _mm512_unpackhi_epi16(ab_hi, cd_hi);
}

template <int T, bool Q4>
struct Tile {
  static uint64_t run(const uint8_t* wg, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy,
                      int64_t rows_left) {
    constexpr int kChan = Q4 ? sparrow::kSparseQ4_0Channel : sparrow::kSparseQ8_0Channel;
    constexpr int kBlock = Q4 ? sparrow::kSparseQ4_0Block : sparrow::kSparseQ8_0Block;
    constexpr int32_t kOff = Q4 ? 8 : 128;
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    __m512 acc[T][8];
    for (int t = 0; t < T; t++)
      for (int j = 0; j < 8; j++) acc[t][j] = _mm512_setzero_ps();
    uint64_t bytes = 0;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      const uint8_t* ch0 = blk + sparrow::kSparseScaleBytes;
      __m256i any = _mm256_setzero_si256();
      for (int t = 0; t < T; t++)
        any = _mm256_or_si256(any, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + t * xrow + b * 40 + 8)));
      uint32_t active = _mm256_test_epi8_mask(any, any);
      bytes += sparrow::kSparseScaleBytes + uint64_t(__builtin_popcount(active)) * kChan;
      __m512i s[T][8];
      for (int t = 0; t < T; t++)
        for (int j = 0; j < 8; j++) s[t][j] = _mm512_setzero_si512();
      while (active) {
        int c[4];
        uint32_t keep[4];  // 0xff where channel c[k] is a real one of the quad, else 0
        for (int k = 0; k < 4; k++) {
          if (active) {
            c[k] = __builtin_ctz(active);
            active &= active - 1;
            keep[k] = 0xffu;
          } else {
            c[k] = c[0];
            keep[k] = 0;
          }
        }
        __m512i xv[T];
        for (int t = 0; t < T; t++) {
          const uint8_t* xs = x + t * xrow + b * 40 + 8;
          uint32_t v = (uint32_t(xs[c[0]]) & keep[0]) | (uint32_t(xs[c[1]]) & keep[1]) << 8 |
                       (uint32_t(xs[c[2]]) & keep[2]) << 16 | (uint32_t(xs[c[3]]) & keep[3]) << 24;
          xv[t] = _mm512_set1_epi32(int32_t(v));
        }
        for (int h = 0; h < 2; h++) {
          __m512i v[4];
          for (int k = 0; k < 4; k++) {
            if (Q4) {
              const __m512i raw = load(ch0 + c[k] * kChan);
              v[k] = h ? _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4) : _mm512_and_si512(raw, m4);
            } else {
              v[k] = load(ch0 + c[k] * kChan + 64 * h);
            }
          }
          __m512i r[4];
          interleave4(v[0], v[1], v[2], v[3], r);
          for (int t = 0; t < T; t++)
            for (int j = 0; j < 4; j++) s[t][4 * h + j] = _mm512_dpbusd_epi32(s[t][4 * h + j], r[j], xv[t]);
        }
      }
      for (int j = 0; j < 8; j++) {
        const __m512 dw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * j)));
        for (int t = 0; t < T; t++) {
          const uint8_t* xb = x + t * xrow + b * 40;
          const __m512i si = _mm512_sub_epi32(s[t][j], _mm512_set1_epi32(kOff * ld32(xb + 4)));
          acc[t][j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(si), dw), _mm512_set1_ps(ldf(xb)), acc[t][j]);
        }
      }
    }
    for (int j = 0; j < 8; j++) {
      const int64_t left = rows_left - 16 * j;
      if (left <= 0) break;
      const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
      for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy + 16 * j, mask, acc[t][j]);
    }
    return bytes;
  }
};

template <bool Q4>
uint64_t smm(SP_SMM_ARGS) {
  constexpr int kBlock = Q4 ? sparrow::kSparseQ4_0Block : sparrow::kSparseQ8_0Block;
  const int64_t nb = cols / 32, xrow = nb * 40;
  const uint8_t* x = static_cast<const uint8_t*>(xq);
  uint64_t bytes = 0;
  for (int64_t g = g0; g < g1; g++) {
    const uint8_t* wg = w + g * nb * kBlock;
    float* yg = y + g * sparrow::kSparseRows;
    const int64_t left = rlimit - g * sparrow::kSparseRows;
    switch (n) {
      case 1: bytes += Tile<1, Q4>::run(wg, nb, x, xrow, yg, ldy, left); break;
      case 2: bytes += Tile<2, Q4>::run(wg, nb, x, xrow, yg, ldy, left); break;
      case 3: bytes += Tile<3, Q4>::run(wg, nb, x, xrow, yg, ldy, left); break;
      case 4: bytes += Tile<4, Q4>::run(wg, nb, x, xrow, yg, ldy, left); break;
      case 5: bytes += Tile<5, Q4>::run(wg, nb, x, xrow, yg, ldy, left); break;
      case 6: bytes += Tile<6, Q4>::run(wg, nb, x, xrow, yg, ldy, left); break;
      case 7: bytes += Tile<7, Q4>::run(wg, nb, x, xrow, yg, ldy, left); break;
      case 8: bytes += Tile<8, Q4>::run(wg, nb, x, xrow, yg, ldy, left); break;
      default: break;
    }
  }
  return bytes;
}

}  // namespace

extern "C" uint64_t sp_smm_q4_0_avx512(SP_SMM_ARGS) { return smm<true>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
extern "C" uint64_t sp_smm_q8_0_avx512(SP_SMM_ARGS) { return smm<false>(w, cols, xq, n, y, ldy, g0, g1, rlimit); }
