// AVX-512 (F, BW, VL, DQ, VNNI) matmul kernels over the repacked layouts of
// kernels/layout.h. extern "C" entry points only; the helpers below and those of
// common_avx512.h (shared with matmul_extra_avx512.cpp, the later weight types) have
// internal linkage (anonymous namespace), so no other translation unit can pick them up.
//
// Quantized types: a micro-kernel computes a tile of 16 rows (one group: one zmm lane per
// row) x T tokens (T <= 8) over all blocks of the row. Per block it unpacks the group's
// quants once into registers and reuses them for the T tokens: vpdpbusd multiplies the
// unsigned quants (nibbles, 6-bit values, or q+128) with 4 broadcast activation bytes and
// adds into each row's lane; the offsets (-8, -32, -128) and the K-quant mins are
// corrected with the activation block sums. n = 1 is the GEMV of decoding.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/avx512/common_avx512.h"

namespace {

// ---- Q4_0 and Q8_0: 32-column blocks, BlockQ8A activations (d at 0, sum at 4, qs at 8) ----

template <int T>
struct Q4_0Tile {
  static void run(const uint8_t* wg, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __mmask16 mask) {
    __m512 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kQ4_0GroupBlock;
      for (int l = 0; l < 5; l++) _mm_prefetch(reinterpret_cast<const char*>(blk + kAhead + 64 * l), _MM_HINT_T0);
      __m512i w[8];
      for (int k = 0; k < 4; k++) {
        __m512i raw = load(blk + 32 + 64 * k);
        w[k] = _mm512_and_si512(raw, m4);                          // values 4k..4k+3
        w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);  // values 16+4k..
      }
      const __m512 dw = load_f16x16(blk);
      for (int t = 0; t < T; t++) {
        const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
        __m512i s = _mm512_sub_epi32(dot8(w, xb + 8), _mm512_set1_epi32(8 * ld32(xb + 4)));
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), dw), _mm512_set1_ps(ldf(xb)), acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy, mask, acc[t]);
  }
};

template <int T>
struct Q8_0Tile {
  static void run(const uint8_t* wg, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __mmask16 mask) {
    __m512 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kQ8_0GroupBlock;
      for (int l = 0; l < 9; l++) _mm_prefetch(reinterpret_cast<const char*>(blk + kAhead + 64 * l), _MM_HINT_T0);
      __m512i w[8];
      for (int k = 0; k < 8; k++) w[k] = load(blk + 32 + 64 * k);  // q + 128, unsigned
      const __m512 dw = load_f16x16(blk);
      for (int t = 0; t < T; t++) {
        const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
        __m512i s = _mm512_sub_epi32(dot8(w, xb + 8), _mm512_set1_epi32(128 * ld32(xb + 4)));
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), dw), _mm512_set1_ps(ldf(xb)), acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy, mask, acc[t]);
  }
};

// ---- Q4_K / Q5_K: 256-column super-blocks, BlockQ8KA activations ----

template <int T, bool Q5>
struct Q45_KTileImpl {
  static void run(const uint8_t* wg, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __mmask16 mask) {
    constexpr int kBlock = Q5 ? sparrow::kQ5_KGroupBlock : sparrow::kQ4_KGroupBlock;
    __m512 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i m10 = _mm512_set1_epi8(0x10);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      __m512i isum[T];
      for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
      for (int j = 0; j < 8; j++) {
        const __m512i sc = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 64 + 16 * j)));
        const uint8_t* qc = blk + 320 + 64 * 8 * (j >> 1);
        for (int l = 0; l < kBlock / 64 / 8 + 1; l++)
          _mm_prefetch(reinterpret_cast<const char*>(blk + kAhead + (kBlock / 8) * j + 64 * l), _MM_HINT_T0);
        __m512i w[8];
        for (int k = 0; k < 8; k++) {
          __m512i raw = load(qc + 64 * k);
          w[k] = (j & 1) ? _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4) : _mm512_and_si512(raw, m4);
          if (Q5) {
            __m512i h = load(blk + 2368 + 64 * k);  // bit j of each byte -> bit 4
            h = j <= 4 ? _mm512_slli_epi16(h, 4 - j) : _mm512_srli_epi16(h, j - 4);
            w[k] = _mm512_or_si512(w[k], _mm512_and_si512(h, m10));
          }
        }
        for (int t = 0; t < T; t++) {
          const uint8_t* xq = xs + t * xrow + sparrow::kQ8KAQs + 32 * j;
          isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(dot8(w, xq), sc));
        }
      }
      // mins: sum_j m[j] * bsums32[j], pairs of sub-blocks per vpdpwssd
      __m512i msum[T];
      for (int t = 0; t < T; t++) msum[t] = _mm512_setzero_si512();
      for (int p = 0; p < 4; p++) {
        const __m512i mp = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 192 + 32 * p)));
        for (int t = 0; t < T; t++)
          msum[t] = _mm512_dpwssd_epi32(msum[t], mp, bcast(xs + t * xrow + sparrow::kQ8KABsums32 + 4 * p));
      }
      const __m512 d = load_f16x16(blk), dmin = load_f16x16(blk + 32);
      for (int t = 0; t < T; t++) {
        __m512 v = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(isum[t])), _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(msum[t])));
        acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(ldf(xs + t * xrow)), v, acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy, mask, acc[t]);
  }
};
template <int T> struct Q4_KTile : Q45_KTileImpl<T, false> {};
template <int T> struct Q5_KTile : Q45_KTileImpl<T, true> {};

// ---- Q6_K ----

template <int T>
struct Q6_KTile {
  static void run(const uint8_t* wg, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __mmask16 mask) {
    __m512 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i m30 = _mm512_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kQ6_KGroupBlock;
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      __m512i isum[T];
      for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
      for (int s = 0; s < 16; s++) {
        for (int l = 0; l < 4; l++)
          _mm_prefetch(reinterpret_cast<const char*>(blk + kAhead + 210 * s + 64 * l), _MM_HINT_T0);
        const __m512i qh = load(blk + 2336 + 64 * s);
        const __m512i ql0 = load(blk + 288 + 128 * s), ql1 = load(blk + 288 + 128 * s + 64);
        const __m512i w0 = _mm512_or_si512(_mm512_and_si512(ql0, m4), _mm512_and_si512(_mm512_slli_epi16(qh, 4), m30));
        const __m512i w1 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql0, 4), m4),
                                           _mm512_and_si512(_mm512_slli_epi16(qh, 2), m30));
        const __m512i w2 = _mm512_or_si512(_mm512_and_si512(ql1, m4), _mm512_and_si512(qh, m30));
        const __m512i w3 = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql1, 4), m4),
                                           _mm512_and_si512(_mm512_srli_epi16(qh, 2), m30));
        const __m512i pair = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 32 * (s >> 1))));
        const __m512i sc = (s & 1) ? _mm512_srai_epi32(pair, 16) : _mm512_srai_epi32(_mm512_slli_epi32(pair, 16), 16);
        for (int t = 0; t < T; t++) {
          const uint8_t* xq = xs + t * xrow + sparrow::kQ8KAQs + 16 * s;
          __m512i s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w0, bcast(xq));
          __m512i s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w1, bcast(xq + 4));
          s0 = _mm512_dpbusd_epi32(s0, w2, bcast(xq + 8));
          s1 = _mm512_dpbusd_epi32(s1, w3, bcast(xq + 12));
          isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(_mm512_add_epi32(s0, s1), sc));
        }
      }
      // the -32 offset: 32 * sum_s sc[s] * bsums[s], pairs of sub-blocks per vpdpwssd
      __m512i csum[T];
      for (int t = 0; t < T; t++) csum[t] = _mm512_setzero_si512();
      for (int p = 0; p < 8; p++) {
        const __m512i sp = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 + 32 * p)));
        for (int t = 0; t < T; t++)
          csum[t] = _mm512_dpwssd_epi32(csum[t], sp, bcast(xs + t * xrow + sparrow::kQ8KABsums + 4 * p));
      }
      const __m512 d = load_f16x16(blk);
      for (int t = 0; t < T; t++) {
        __m512i v = _mm512_sub_epi32(isum[t], _mm512_slli_epi32(csum[t], 5));
        acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(ldf(xs + t * xrow)), _mm512_mul_ps(d, _mm512_cvtepi32_ps(v)), acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy, mask, acc[t]);
  }
};

// ---- float weights: tiles of 4 rows x 4 tokens, 16 columns per step ----

struct LoadF32 {
  static __m512 load(const void* p, int64_t i, __mmask16 m) { return _mm512_maskz_loadu_ps(m, static_cast<const float*>(p) + i); }
};
struct LoadF16 {
  static __m512 load(const void* p, int64_t i, __mmask16 m) {
    return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + i));
  }
};
struct LoadBF16 {
  static __m512 load(const void* p, int64_t i, __mmask16 m) {
    __m512i v = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(p) + i));
    return _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
  }
};

template <class L, int R, int TT>
void float_tile(const uint8_t* w, int64_t elem, int64_t cols, const float* x, float* y, int64_t ldy, int64_t r) {
  __m512 acc[R][TT];
  for (int i = 0; i < R; i++)
    for (int t = 0; t < TT; t++) acc[i][t] = _mm512_setzero_ps();
  for (int64_t c = 0; c < cols; c += 16) {
    __mmask16 m = mask16(cols - c);
    __m512 xv[TT];
    for (int t = 0; t < TT; t++) xv[t] = _mm512_maskz_loadu_ps(m, x + t * cols + c);
    for (int i = 0; i < R; i++) {
      __m512 wv = L::load(w + (r + i) * cols * elem, c, m);
      for (int t = 0; t < TT; t++) acc[i][t] = _mm512_fmadd_ps(wv, xv[t], acc[i][t]);
    }
  }
  for (int i = 0; i < R; i++)
    for (int t = 0; t < TT; t++) y[t * ldy + r + i] = _mm512_reduce_add_ps(acc[i][t]);
}

template <class L>
void float_mm(const void* w, int64_t elem, int64_t cols, const float* x, int64_t n, float* y, int64_t ldy,
              int64_t r0, int64_t r1) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  for (int64_t t = 0; t < n; t += 4) {
    const float* xt = x + t * cols;
    float* yt = y + t * ldy;
    int64_t r = r0;
    if (n - t >= 4) {
      for (; r + 4 <= r1; r += 4) float_tile<L, 4, 4>(wb, elem, cols, xt, yt, ldy, r);
      for (; r < r1; r++) float_tile<L, 1, 4>(wb, elem, cols, xt, yt, ldy, r);
    } else {  // the last 1..3 tokens one at a time, 4 rows per pass
      for (int64_t tt = t; tt < n; tt++) {
        const float* xs = x + tt * cols;
        float* ys = y + tt * ldy;
        for (r = r0; r + 4 <= r1; r += 4) float_tile<L, 4, 1>(wb, elem, cols, xs, ys, ldy, r);
        for (; r < r1; r++) float_tile<L, 1, 1>(wb, elem, cols, xs, ys, ldy, r);
      }
    }
  }
}

}  // namespace

#define SP_QMM_AVX512(name, Tile, block, nbdiv, xbytes)                                                   \
  extern "C" void sp_mm_##name##_avx512(SP_QMM_ARGS) {                                                    \
    int64_t nb = cols / nbdiv;                                                                            \
    run_tiles<Tile>(w, nb * block, static_cast<const uint8_t*>(xq), nb * xbytes, nb, n, y, ldy, g0, g1, rlimit); \
  }
SP_QMM_AVX512(q4_0, Q4_0Tile, sparrow::kQ4_0GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX512(q8_0, Q8_0Tile, sparrow::kQ8_0GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX512(q4_k, Q4_KTile, sparrow::kQ4_KGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_AVX512(q5_k, Q5_KTile, sparrow::kQ5_KGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_AVX512(q6_k, Q6_KTile, sparrow::kQ6_KGroupBlock, 256, sparrow::kQ8KABytes)

extern "C" void sp_mm_f32_avx512(SP_FMM_ARGS) { float_mm<LoadF32>(w, 4, cols, x, n, y, ldy, r0, r1); }
extern "C" void sp_mm_f16_avx512(SP_FMM_ARGS) { float_mm<LoadF16>(w, 2, cols, x, n, y, ldy, r0, r1); }
extern "C" void sp_mm_bf16_avx512(SP_FMM_ARGS) { float_mm<LoadBF16>(w, 2, cols, x, n, y, ldy, r0, r1); }

extern "C" float sp_dot_f16_f32_avx512(const uint16_t* a, const float* b, int64_t n) {
  __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
  int64_t i = 0;
  for (; i + 32 <= n; i += 32) {
    acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i))), _mm512_loadu_ps(b + i), acc0);
    acc1 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i + 16))), _mm512_loadu_ps(b + i + 16), acc1);
  }
  for (; i < n; i += 16) {
    __mmask16 m = mask16(n - i);
    acc0 = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, a + i)), _mm512_maskz_loadu_ps(m, b + i), acc0);
  }
  return _mm512_reduce_add_ps(_mm512_add_ps(acc0, acc1));
}

extern "C" void sp_axpy_f16_avx512(float a, const uint16_t* x, float* y, int64_t n) {
  const __m512 va = _mm512_set1_ps(a);
  for (int64_t i = 0; i < n; i += 16) {
    __mmask16 m = mask16(n - i);
    __m512 xv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, x + i));
    _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(va, xv, _mm512_maskz_loadu_ps(m, y + i)));
  }
}
