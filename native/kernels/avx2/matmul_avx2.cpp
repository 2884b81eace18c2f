// AVX2 + FMA + F16C matmul kernels over the repacked layouts of kernels/layout.h.
// extern "C" entry points only; helpers have internal linkage.
//
// A 16-row group is done as two halves of 8 rows (one ymm lane per row). The int8 route
// is pmaddubsw (unsigned quant x signed activation -> int16 pairs), summed in int16 while
// that cannot overflow, then pmaddwd to int32 (with ones, or with the K-quant sub-block
// scale so that the scale multiply comes free). Tiles of 8 rows x T tokens (T <= 6);
// the GEMV (n = 1) does all 16 rows of a group in one pass.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/avx2/common_avx2.h"

namespace {

// (v, v) int16 pairs from int32 lanes holding values that fit int16
inline __m256i dup16(__m256i v) { return _mm256_or_si256(_mm256_and_si256(v, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(v, 16)); }

// Q6_K, the type with the most work per byte, wants its next block further ahead than
// the others (kAhead, common_avx2.h; tuned on Zen 3).
constexpr int kAheadQ6_K = 3072;

// Tiles of 8 rows x 6 tokens (then the remainder): six tokens share each unpacked chunk of
// weights, and their sums still fit in registers (measured best of 4, 6 and 8 on Zen 3).
constexpr int kTileTokens = 6;

template <int T>
struct Q4_0Tile {
  static void run(const uint8_t* wg, int h, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __m256i mask,
                  const uint8_t* pf) {
    __m256 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kQ4_0GroupBlock;
      if (pf) prefetch_block(pf + b * sparrow::kQ4_0GroupBlock, sparrow::kQ4_0GroupBlock);
      const uint8_t* xb = x + b * sparrow::kQ8ABytes;
      // nibble (<= 15) x |x| (<= 127): each pair <= 3810, eight of them fit int16
      __m256i s16[T];
      for (int t = 0; t < T; t++) s16[t] = _mm256_setzero_si256();
#pragma GCC unroll 2
      for (int k = 0; k < 4; k++) {
        const __m256i raw = load(blk + 32 + 64 * k + 32 * h);
        const __m256i lo = _mm256_and_si256(raw, m4), hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
        for (int t = 0; t < T; t++) {
          const uint8_t* xt = xb + t * xrow;
          s16[t] = _mm256_add_epi16(s16[t], _mm256_add_epi16(_mm256_maddubs_epi16(lo, bcast(xt + 8 + 4 * k)),
                                                             _mm256_maddubs_epi16(hi, bcast(xt + 24 + 4 * k))));
        }
      }
      const __m256 dw = load_f16x8(blk + 16 * h);
      for (int t = 0; t < T; t++) {
        const uint8_t* xt = xb + t * xrow;
        __m256i s = _mm256_sub_epi32(_mm256_madd_epi16(s16[t], _mm256_set1_epi16(1)), _mm256_set1_epi32(8 * ld32(xt + 4)));
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), dw), _mm256_set1_ps(ldf(xt)), acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm256_maskstore_ps(y + t * ldy, mask, acc[t]);
  }
};

template <int T>
struct Q8_0Tile {
  static void run(const uint8_t* wg, int h, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __m256i mask,
                  const uint8_t* pf) {
    __m256 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i flip = _mm256_set1_epi8(char(0x80));
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kQ8_0GroupBlock;
      if (pf) prefetch_block(pf + b * sparrow::kQ8_0GroupBlock, sparrow::kQ8_0GroupBlock);
      const uint8_t* xb = x + b * sparrow::kQ8ABytes;
      __m256i s[T];
      for (int t = 0; t < T; t++) s[t] = _mm256_setzero_si256();
#pragma GCC unroll 2
      for (int k = 0; k < 8; k++) {
        // |q| * (x * sign q): each pair <= 2 * 128 * 127, fits int16; the result is
        // sum q*x exactly, the same integer as the twin's sum (q+128)x - 128 sum x
        const __m256i ws = _mm256_xor_si256(load(blk + 32 + 64 * k + 32 * h), flip);
        const __m256i wa = _mm256_sign_epi8(ws, ws);
        for (int t = 0; t < T; t++)
          s[t] = _mm256_add_epi32(s[t], _mm256_madd_epi16(_mm256_maddubs_epi16(wa, _mm256_sign_epi8(bcast(xb + t * xrow + 8 + 4 * k), ws)),
                                                          _mm256_set1_epi16(1)));
      }
      const __m256 dw = load_f16x8(blk + 16 * h);
      for (int t = 0; t < T; t++)
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s[t]), dw), _mm256_set1_ps(ldf(xb + t * xrow)), acc[t]);
    }
    for (int t = 0; t < T; t++) _mm256_maskstore_ps(y + t * ldy, mask, acc[t]);
  }
};

template <int T, bool Q5>
struct Q45_KTileImpl {
  static void run(const uint8_t* wg, int h, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __m256i mask,
                  const uint8_t* pf) {
    constexpr int kBlock = Q5 ? sparrow::kQ5_KGroupBlock : sparrow::kQ4_KGroupBlock;
    __m256 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m10 = _mm256_set1_epi8(0x10);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      if (pf) prefetch_block(pf + b * kBlock, kBlock);
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      __m256i isum[T];
      for (int t = 0; t < T; t++) isum[t] = _mm256_setzero_si256();
      for (int j = 0; j < 8; j++) {
        const __m256i sc = dup16(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 64 + 16 * j + 8 * h))));
        const uint8_t* qc = blk + 320 + 64 * 8 * (j >> 1) + 32 * h;
        __m256i w[8];
        for (int k = 0; k < 8; k++) {
          __m256i raw = load(qc + 64 * k);
          w[k] = (j & 1) ? _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4) : _mm256_and_si256(raw, m4);
          if (Q5) {
            __m256i hb = load(blk + 2368 + 64 * k + 32 * h);
            hb = j <= 4 ? _mm256_slli_epi16(hb, 4 - j) : _mm256_srli_epi16(hb, j - 4);
            w[k] = _mm256_or_si256(w[k], _mm256_and_si256(hb, m10));
          }
        }
        for (int t = 0; t < T; t++) {
          const uint8_t* xq = xs + t * xrow + sparrow::kQ8KAQs + 32 * j;
          if (Q5) {  // q <= 31: pairs <= 7874, four fit int16
            __m256i a = _mm256_maddubs_epi16(w[0], bcast(xq)), c = _mm256_maddubs_epi16(w[4], bcast(xq + 16));
            for (int k = 1; k < 4; k++) {
              a = _mm256_add_epi16(a, _mm256_maddubs_epi16(w[k], bcast(xq + 4 * k)));
              c = _mm256_add_epi16(c, _mm256_maddubs_epi16(w[k + 4], bcast(xq + 16 + 4 * k)));
            }
            isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(a, sc), _mm256_madd_epi16(c, sc)));
          } else {  // q <= 15: pairs <= 3810, eight fit int16
            __m256i a = _mm256_maddubs_epi16(w[0], bcast(xq));
            for (int k = 1; k < 8; k++) a = _mm256_add_epi16(a, _mm256_maddubs_epi16(w[k], bcast(xq + 4 * k)));
            isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(a, sc));  // sc * (pair sums)
          }
        }
      }
      __m256i msum[T];
      for (int t = 0; t < T; t++) msum[t] = _mm256_setzero_si256();
      for (int p = 0; p < 4; p++) {
        const __m256i mp = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192 + 32 * p + 16 * h)));
        for (int t = 0; t < T; t++)
          msum[t] = _mm256_add_epi32(msum[t], _mm256_madd_epi16(mp, bcast(xs + t * xrow + sparrow::kQ8KABsums32 + 4 * p)));
      }
      const __m256 d = load_f16x8(blk + 16 * h), dmin = load_f16x8(blk + 32 + 16 * h);
      for (int t = 0; t < T; t++) {
        __m256 v = _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(isum[t])), _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(msum[t])));
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(ldf(xs + t * xrow)), v, acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm256_maskstore_ps(y + t * ldy, mask, acc[t]);
  }
};
template <int T> struct Q4_KTile : Q45_KTileImpl<T, false> {};
template <int T> struct Q5_KTile : Q45_KTileImpl<T, true> {};

template <int T>
struct Q6_KTile {
  static void run(const uint8_t* wg, int h, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __m256i mask,
                  const uint8_t* pf) {
    __m256 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kQ6_KGroupBlock;
      if (pf) prefetch_block(pf + b * sparrow::kQ6_KGroupBlock, sparrow::kQ6_KGroupBlock);
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      __m256i isum[T];
      for (int t = 0; t < T; t++) isum[t] = _mm256_setzero_si256();
      for (int s = 0; s < 16; s++) {
        const __m256i qh = load(blk + 2336 + 64 * s + 32 * h);
        const __m256i ql0 = load(blk + 288 + 128 * s + 32 * h), ql1 = load(blk + 288 + 128 * s + 64 + 32 * h);
        const __m256i w0 = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
        const __m256i w1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
        const __m256i w2 = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(qh, m30));
        const __m256i w3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        const __m256i pair = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 32 * (s >> 1) + 16 * h)));
        // (sc, sc) per lane: the even or the odd int16 of each pair, duplicated
        const __m256i sc = (s & 1) ? _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(pair, 0xf5), 0xf5)
                                   : _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(pair, 0xa0), 0xa0);
        for (int t = 0; t < T; t++) {
          const uint8_t* xq = xs + t * xrow + sparrow::kQ8KAQs + 16 * s;
          // q <= 63: pairs <= 16002, two fit int16
          __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(w0, bcast(xq)), _mm256_maddubs_epi16(w1, bcast(xq + 4)));
          __m256i c = _mm256_add_epi16(_mm256_maddubs_epi16(w2, bcast(xq + 8)), _mm256_maddubs_epi16(w3, bcast(xq + 12)));
          isum[t] = _mm256_add_epi32(isum[t], _mm256_add_epi32(_mm256_madd_epi16(a, sc), _mm256_madd_epi16(c, sc)));
        }
      }
      __m256i csum[T];
      for (int t = 0; t < T; t++) csum[t] = _mm256_setzero_si256();
      for (int p = 0; p < 8; p++) {
        const __m256i sp = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 32 * p + 16 * h)));
        for (int t = 0; t < T; t++)
          csum[t] = _mm256_add_epi32(csum[t], _mm256_madd_epi16(sp, bcast(xs + t * xrow + sparrow::kQ8KABsums + 4 * p)));
      }
      const __m256 d = load_f16x8(blk + 16 * h);
      for (int t = 0; t < T; t++) {
        __m256i v = _mm256_sub_epi32(isum[t], _mm256_slli_epi32(csum[t], 5));
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(ldf(xs + t * xrow)), _mm256_mul_ps(d, _mm256_cvtepi32_ps(v)), acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm256_maskstore_ps(y + t * ldy, mask, acc[t]);
  }
};

// ---- n = 1, the GEMV of decoding: all 16 rows of a group in one pass ----
// The tiles above go over a group's bytes twice (one 8-row half, then the other), so the
// memory stream stalls during the second pass. Here both halves are done per block, the
// activation broadcasts serve both, and the weight stream is prefetched ahead. Per row,
// the integer sums are the tiles' (exact: no int16 sum can overflow, in any order) and
// the float operations per block are the tiles' in the same order, so y[t][r] has the
// same bits whatever n (test/kernels/determinism.test.ts).


inline __m256i load_u8x8_epi32(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }

template <void (*Gemv)(const uint8_t*, int64_t, const uint8_t*, float*, __m256i, __m256i)>
void run_gemv(const uint8_t* w, int64_t group_bytes, const uint8_t* x, int64_t nb, float* y, int64_t g0, int64_t g1,
              int64_t rlimit) {
  (void)nb;
  for (int64_t g = g0; g < g1; g++) {
    const int64_t left = rlimit - g * 16;
    Gemv(w + g * group_bytes, group_bytes, x, y + g * 16, mask_rows(left), mask_rows(left - 8));
  }
}

void gemv_q4_0(const uint8_t* wg, int64_t group_bytes, const uint8_t* x, float* y, __m256i mask0, __m256i mask1) {
  const int64_t nb = group_bytes / sparrow::kQ4_0GroupBlock;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* blk = wg + b * sparrow::kQ4_0GroupBlock;
    const uint8_t* xb = x + b * sparrow::kQ8ABytes;
    for (int l = 0; l < 5; l++) prefetch(blk + kAhead + 64 * l);
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    for (int k = 0; k < 4; k++) {
      const __m256i r0 = load(blk + 32 + 64 * k), r1 = load(blk + 64 + 64 * k);
      const __m256i xl = bcast(xb + 8 + 4 * k), xh = bcast(xb + 24 + 4 * k);
      s0 = _mm256_add_epi16(s0, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(r0, m4), xl),
                                                 _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(r0, 4), m4), xh)));
      s1 = _mm256_add_epi16(s1, _mm256_add_epi16(_mm256_maddubs_epi16(_mm256_and_si256(r1, m4), xl),
                                                 _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(r1, 4), m4), xh)));
    }
    const __m256i sx = _mm256_set1_epi32(8 * ld32(xb + 4));
    const __m256 dx = _mm256_set1_ps(ldf(xb));
    acc0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_madd_epi16(s0, ones), sx)), load_f16x8(blk)), dx, acc0);
    acc1 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_madd_epi16(s1, ones), sx)), load_f16x8(blk + 16)), dx, acc1);
  }
  _mm256_maskstore_ps(y, mask0, acc0);
  _mm256_maskstore_ps(y + 8, mask1, acc1);
}

void gemv_q8_0(const uint8_t* wg, int64_t group_bytes, const uint8_t* x, float* y, __m256i mask0, __m256i mask1) {
  const int64_t nb = group_bytes / sparrow::kQ8_0GroupBlock;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const __m256i flip = _mm256_set1_epi8(char(0x80)), ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* blk = wg + b * sparrow::kQ8_0GroupBlock;
    const uint8_t* xb = x + b * sparrow::kQ8ABytes;
    for (int l = 0; l < 9; l++) prefetch(blk + kAhead + 64 * l);
    __m256i s0 = _mm256_setzero_si256(), s1 = _mm256_setzero_si256();
    for (int k = 0; k < 8; k++) {
      const __m256i xk = bcast(xb + 8 + 4 * k);
      const __m256i w0 = _mm256_xor_si256(load(blk + 32 + 64 * k), flip), w1 = _mm256_xor_si256(load(blk + 64 + 64 * k), flip);
      s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w0, w0), _mm256_sign_epi8(xk, w0)), ones));
      s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(w1, w1), _mm256_sign_epi8(xk, w1)), ones));
    }
    const __m256 dx = _mm256_set1_ps(ldf(xb));
    acc0 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s0), load_f16x8(blk)), dx, acc0);
    acc1 = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s1), load_f16x8(blk + 16)), dx, acc1);
  }
  _mm256_maskstore_ps(y, mask0, acc0);
  _mm256_maskstore_ps(y + 8, mask1, acc1);
}

// Q4_K / Q5_K: per pair of sub-blocks (2c, 2c+1) the same bytes hold both (low and high
// nibbles), so each 64-byte chunk is loaded once for its 16 rows and its two sub-blocks.
template <bool Q5>
void gemv_q45_k(const uint8_t* wg, int64_t group_bytes, const uint8_t* x, float* y, __m256i mask0, __m256i mask1) {
  constexpr int kBlock = Q5 ? sparrow::kQ5_KGroupBlock : sparrow::kQ4_KGroupBlock;
  const int64_t nb = group_bytes / kBlock;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0f), m10 = _mm256_set1_epi8(0x10);
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* blk = wg + b * kBlock;
    const uint8_t* xs = x + b * sparrow::kQ8KABytes;
    const uint8_t* xq = xs + sparrow::kQ8KAQs;
    __m256i isum0 = _mm256_setzero_si256(), isum1 = _mm256_setzero_si256();
    for (int c = 0; c < 4; c++) {
      const uint8_t* qc = blk + 320 + 512 * c;
      // K: chunks per int16 sum (Q4: 8 fit, Q5: 4 fit)
      constexpr int K = Q5 ? 4 : 8;
      for (int k0 = 0; k0 < 8; k0 += K) {
        __m256i a0 = _mm256_setzero_si256(), b0 = a0, a1 = a0, b1 = a0;
#pragma GCC unroll 2
        for (int k = k0; k < k0 + K; k++) {
          // two blocks ahead, spread over the 32 chunk steps (1/32 of a block each)
          prefetch(blk + 2 * kBlock + (kBlock / 32) * (8 * c + k));
          prefetch(blk + 2 * kBlock + (kBlock / 32) * (8 * c + k) + 64);
          const __m256i r0 = load(qc + 64 * k), r1 = load(qc + 64 * k + 32);
          __m256i lo0 = _mm256_and_si256(r0, m4), hi0 = _mm256_and_si256(_mm256_srli_epi16(r0, 4), m4);
          __m256i lo1 = _mm256_and_si256(r1, m4), hi1 = _mm256_and_si256(_mm256_srli_epi16(r1, 4), m4);
          if (Q5) {  // bit j of each byte -> bit 4, j = 2c (low) and 2c+1 (high)
            const __m256i h0 = load(blk + 2368 + 64 * k), h1 = load(blk + 2368 + 64 * k + 32);
            const int j = 2 * c;
            lo0 = _mm256_or_si256(lo0, _mm256_and_si256(j <= 4 ? _mm256_slli_epi16(h0, 4 - j) : _mm256_srli_epi16(h0, j - 4), m10));
            lo1 = _mm256_or_si256(lo1, _mm256_and_si256(j <= 4 ? _mm256_slli_epi16(h1, 4 - j) : _mm256_srli_epi16(h1, j - 4), m10));
            hi0 = _mm256_or_si256(hi0, _mm256_and_si256(j + 1 <= 4 ? _mm256_slli_epi16(h0, 3 - j) : _mm256_srli_epi16(h0, j - 3), m10));
            hi1 = _mm256_or_si256(hi1, _mm256_and_si256(j + 1 <= 4 ? _mm256_slli_epi16(h1, 3 - j) : _mm256_srli_epi16(h1, j - 3), m10));
          }
          const __m256i xa = bcast(xq + 64 * c + 4 * k), xb = bcast(xq + 64 * c + 32 + 4 * k);
          a0 = _mm256_add_epi16(a0, _mm256_maddubs_epi16(lo0, xa));
          b0 = _mm256_add_epi16(b0, _mm256_maddubs_epi16(hi0, xb));
          a1 = _mm256_add_epi16(a1, _mm256_maddubs_epi16(lo1, xa));
          b1 = _mm256_add_epi16(b1, _mm256_maddubs_epi16(hi1, xb));
        }
        const uint8_t* sc = blk + 64 + 32 * c;  // sub-block 2c: sc[0..16), 2c+1: sc[16..32)
        isum0 = _mm256_add_epi32(isum0, _mm256_add_epi32(_mm256_madd_epi16(a0, dup16(load_u8x8_epi32(sc))),
                                                         _mm256_madd_epi16(b0, dup16(load_u8x8_epi32(sc + 16)))));
        isum1 = _mm256_add_epi32(isum1, _mm256_add_epi32(_mm256_madd_epi16(a1, dup16(load_u8x8_epi32(sc + 8))),
                                                         _mm256_madd_epi16(b1, dup16(load_u8x8_epi32(sc + 24)))));
      }
    }
    __m256i msum0 = _mm256_setzero_si256(), msum1 = _mm256_setzero_si256();
    for (int p = 0; p < 4; p++) {
      const __m256i xm = bcast(xs + sparrow::kQ8KABsums32 + 4 * p);
      msum0 = _mm256_add_epi32(msum0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 192 + 32 * p))), xm));
      msum1 = _mm256_add_epi32(msum1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 208 + 32 * p))), xm));
    }
    const __m256 dx = _mm256_set1_ps(ldf(xs));
    const __m256 v0 = _mm256_sub_ps(_mm256_mul_ps(load_f16x8(blk), _mm256_cvtepi32_ps(isum0)), _mm256_mul_ps(load_f16x8(blk + 32), _mm256_cvtepi32_ps(msum0)));
    const __m256 v1 = _mm256_sub_ps(_mm256_mul_ps(load_f16x8(blk + 16), _mm256_cvtepi32_ps(isum1)), _mm256_mul_ps(load_f16x8(blk + 48), _mm256_cvtepi32_ps(msum1)));
    acc0 = _mm256_fmadd_ps(dx, v0, acc0);
    acc1 = _mm256_fmadd_ps(dx, v1, acc1);
  }
  _mm256_maskstore_ps(y, mask0, acc0);
  _mm256_maskstore_ps(y + 8, mask1, acc1);
}
void gemv_q4_k(const uint8_t* wg, int64_t gb, const uint8_t* x, float* y, __m256i m0, __m256i m1) { gemv_q45_k<false>(wg, gb, x, y, m0, m1); }
void gemv_q5_k(const uint8_t* wg, int64_t gb, const uint8_t* x, float* y, __m256i m0, __m256i m1) { gemv_q45_k<true>(wg, gb, x, y, m0, m1); }

void gemv_q6_k(const uint8_t* wg, int64_t group_bytes, const uint8_t* x, float* y, __m256i mask0, __m256i mask1) {
  const int64_t nb = group_bytes / sparrow::kQ6_KGroupBlock;
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const __m256i m4 = _mm256_set1_epi8(0x0f), m30 = _mm256_set1_epi8(0x30);
  for (int64_t b = 0; b < nb; b++) {
    const uint8_t* blk = wg + b * sparrow::kQ6_KGroupBlock;
    const uint8_t* xs = x + b * sparrow::kQ8KABytes;
    __m256i isum[2] = {_mm256_setzero_si256(), _mm256_setzero_si256()};
    for (int s = 0; s < 16; s++) {
      for (int l = 0; l < 4; l++) prefetch(blk + kAheadQ6_K + 210 * s + 64 * l);
      const uint8_t* xq = xs + sparrow::kQ8KAQs + 16 * s;
      const __m256i x0 = bcast(xq), x1 = bcast(xq + 4), x2 = bcast(xq + 8), x3 = bcast(xq + 12);
      for (int h = 0; h < 2; h++) {
        const __m256i qh = load(blk + 2336 + 64 * s + 32 * h);
        const __m256i ql0 = load(blk + 288 + 128 * s + 32 * h), ql1 = load(blk + 288 + 128 * s + 64 + 32 * h);
        const __m256i w0 = _mm256_or_si256(_mm256_and_si256(ql0, m4), _mm256_and_si256(_mm256_slli_epi16(qh, 4), m30));
        const __m256i w1 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4), _mm256_and_si256(_mm256_slli_epi16(qh, 2), m30));
        const __m256i w2 = _mm256_or_si256(_mm256_and_si256(ql1, m4), _mm256_and_si256(qh, m30));
        const __m256i w3 = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4), _mm256_and_si256(_mm256_srli_epi16(qh, 2), m30));
        const __m256i pair = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 32 * (s >> 1) + 16 * h)));
        const __m256i sc = (s & 1) ? _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(pair, 0xf5), 0xf5)
                                   : _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(pair, 0xa0), 0xa0);
        const __m256i a = _mm256_add_epi16(_mm256_maddubs_epi16(w0, x0), _mm256_maddubs_epi16(w1, x1));
        const __m256i c = _mm256_add_epi16(_mm256_maddubs_epi16(w2, x2), _mm256_maddubs_epi16(w3, x3));
        isum[h] = _mm256_add_epi32(isum[h], _mm256_add_epi32(_mm256_madd_epi16(a, sc), _mm256_madd_epi16(c, sc)));
      }
    }
    __m256i csum0 = _mm256_setzero_si256(), csum1 = _mm256_setzero_si256();
    for (int p = 0; p < 8; p++) {
      const __m256i xb = bcast(xs + sparrow::kQ8KABsums + 4 * p);
      csum0 = _mm256_add_epi32(csum0, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 32 * p))), xb));
      csum1 = _mm256_add_epi32(csum1, _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 48 + 32 * p))), xb));
    }
    const __m256 dx = _mm256_set1_ps(ldf(xs));
    acc0 = _mm256_fmadd_ps(dx, _mm256_mul_ps(load_f16x8(blk), _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[0], _mm256_slli_epi32(csum0, 5)))), acc0);
    acc1 = _mm256_fmadd_ps(dx, _mm256_mul_ps(load_f16x8(blk + 16), _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[1], _mm256_slli_epi32(csum1, 5)))), acc1);
  }
  _mm256_maskstore_ps(y, mask0, acc0);
  _mm256_maskstore_ps(y + 8, mask1, acc1);
}

// ---- float weights: 4 rows x up to 2 tokens, 8 columns per step, scalar tail ----

struct LoadF32 {
  static __m256 load(const uint8_t* p) { return _mm256_loadu_ps(reinterpret_cast<const float*>(p)); }
  static float one(const uint8_t* p) { return ldf(p); }
  static constexpr int elem = 4;
};
struct LoadF16 {
  static __m256 load(const uint8_t* p) { return load_f16x8(p); }
  static float one(const uint8_t* p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    return _cvtsh_ss(h);
  }
  static constexpr int elem = 2;
};
struct LoadBF16 {
  static __m256 load(const uint8_t* p) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
  }
  static float one(const uint8_t* p) {
    uint16_t h;
    __builtin_memcpy(&h, p, 2);
    uint32_t b = uint32_t(h) << 16;
    float f;
    __builtin_memcpy(&f, &b, 4);
    return f;
  }
  static constexpr int elem = 2;
};

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <class L, int R, int TT>
void float_tile(const uint8_t* w, int64_t cols, const float* x, float* y, int64_t ldy, int64_t r) {
  __m256 acc[R][TT];
  for (int i = 0; i < R; i++)
    for (int t = 0; t < TT; t++) acc[i][t] = _mm256_setzero_ps();
  const int64_t main = cols / 8 * 8;
  for (int64_t c = 0; c < main; c += 8) {
    __m256 xv[TT];
    for (int t = 0; t < TT; t++) xv[t] = _mm256_loadu_ps(x + t * cols + c);
    for (int i = 0; i < R; i++) {
      __m256 wv = L::load(w + ((r + i) * cols + c) * L::elem);
      for (int t = 0; t < TT; t++) acc[i][t] = _mm256_fmadd_ps(wv, xv[t], acc[i][t]);
    }
  }
  for (int i = 0; i < R; i++)
    for (int t = 0; t < TT; t++) {
      float s = hsum(acc[i][t]);
      for (int64_t c = main; c < cols; c++) s += L::one(w + ((r + i) * cols + c) * L::elem) * x[t * cols + c];
      y[t * ldy + r + i] = s;
    }
}

template <class L>
void float_mm(const void* w, int64_t cols, const float* x, int64_t n, float* y, int64_t ldy, int64_t r0, int64_t r1) {
  const uint8_t* wb = static_cast<const uint8_t*>(w);
  int64_t t = 0;
  for (; t + 2 <= n; t += 2) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) float_tile<L, 4, 2>(wb, cols, x + t * cols, y + t * ldy, ldy, r);
    for (; r < r1; r++) float_tile<L, 1, 2>(wb, cols, x + t * cols, y + t * ldy, ldy, r);
  }
  for (; t < n; t++) {
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) float_tile<L, 4, 1>(wb, cols, x + t * cols, y + t * ldy, ldy, r);
    for (; r < r1; r++) float_tile<L, 1, 1>(wb, cols, x + t * cols, y + t * ldy, ldy, r);
  }
}

}  // namespace

#define SP_QMM_AVX2(name, Tile, block, nbdiv, xbytes)                                                     \
  extern "C" void sp_mm_##name##_avx2(SP_QMM_ARGS) {                                                      \
    int64_t nb = cols / nbdiv;                                                                            \
    if (n == 1)                                                                                           \
      run_gemv<gemv_##name>(w, nb * block, static_cast<const uint8_t*>(xq), nb, y, g0, g1, rlimit);       \
    else                                                                                                  \
      run_tiles<Tile, kTileTokens>(w, nb * block, static_cast<const uint8_t*>(xq), nb * xbytes, nb, n, y, ldy, g0, g1, rlimit); \
  }
SP_QMM_AVX2(q4_0, Q4_0Tile, sparrow::kQ4_0GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX2(q8_0, Q8_0Tile, sparrow::kQ8_0GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX2(q4_k, Q4_KTile, sparrow::kQ4_KGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_AVX2(q5_k, Q5_KTile, sparrow::kQ5_KGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_AVX2(q6_k, Q6_KTile, sparrow::kQ6_KGroupBlock, 256, sparrow::kQ8KABytes)

extern "C" void sp_mm_f32_avx2(SP_FMM_ARGS) { float_mm<LoadF32>(w, cols, x, n, y, ldy, r0, r1); }
extern "C" void sp_mm_f16_avx2(SP_FMM_ARGS) { float_mm<LoadF16>(w, cols, x, n, y, ldy, r0, r1); }
extern "C" void sp_mm_bf16_avx2(SP_FMM_ARGS) { float_mm<LoadBF16>(w, cols, x, n, y, ldy, r0, r1); }

extern "C" float sp_dot_f16_f32_avx2(const uint16_t* a, const float* b, int64_t n) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    acc0 = _mm256_fmadd_ps(load_f16x8(reinterpret_cast<const uint8_t*>(a + i)), _mm256_loadu_ps(b + i), acc0);
    acc1 = _mm256_fmadd_ps(load_f16x8(reinterpret_cast<const uint8_t*>(a + i + 8)), _mm256_loadu_ps(b + i + 8), acc1);
  }
  for (; i + 8 <= n; i += 8) acc0 = _mm256_fmadd_ps(load_f16x8(reinterpret_cast<const uint8_t*>(a + i)), _mm256_loadu_ps(b + i), acc0);
  float s = hsum(_mm256_add_ps(acc0, acc1));
  for (; i < n; i++) s += _cvtsh_ss(a[i]) * b[i];
  return s;
}

extern "C" void sp_axpy_f16_avx2(float a, const uint16_t* x, float* y, int64_t n) {
  const __m256 va = _mm256_set1_ps(a);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_fmadd_ps(va, load_f16x8(reinterpret_cast<const uint8_t*>(x + i)), _mm256_loadu_ps(y + i)));
  for (; i < n; i++) y[i] += a * _cvtsh_ss(x[i]);
}
