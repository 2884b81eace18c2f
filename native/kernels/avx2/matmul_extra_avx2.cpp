// AVX2 + FMA + F16C matmul kernels of the later weight types over the repacked layouts
// of kernels/layout.h: Q4_1 / Q5_0 / Q5_1, IQ4_NL / MXFP4 / IQ4_XS (codebooks), and
// Q2_K / Q3_K (2-bit values). extern "C" entry points only; helpers have internal linkage.
//
// As matmul_avx2.cpp: a 16-row group is done as two halves of 8 rows (one ymm lane per
// row), tiles of 8 rows x T tokens (T <= 4), run by common_avx2.h's run_tiles (with its
// weight prefetch for runs of fewer than 4 tokens, the GEMV included). pmaddubsw
// multiplies unsigned quants with signed activations (int16 pairs, summed in int16 while
// that cannot overflow); signed values (the codebooks) go through the sign trick
// |w| * (x sign w).
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/avx2/common_avx2.h"

namespace {

// 2^(e-128) for 8 E8M0 bytes (exact; e = 0, 1 give subnormals)
inline __m256 e8m0_half_x8(const uint8_t* p) {
  const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23);
  const __m256i sub = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e);
  return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, sub, _mm256_cmpgt_epi32(_mm256_set1_epi32(2), e)));
}

// ---- Q4_1 / Q5_0 / Q5_1 ----

template <int T, bool HasMin, bool Five>
struct LegacyTileImpl {
  static constexpr int kBlock = HasMin ? (Five ? sparrow::kQ5_1GroupBlock : sparrow::kQ4_1GroupBlock) : sparrow::kQ5_0GroupBlock;
  static constexpr int kQs = HasMin ? 64 : 32;
  static void run(const uint8_t* wg, int h, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __m256i mask,
                  const uint8_t* pf) {
    __m256 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), m10 = _mm256_set1_epi8(0x10), ones = _mm256_set1_epi16(1);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      if (pf) prefetch_block(pf + b * kBlock, kBlock);
      __m256i w[8];
      const __m256i hb = Five ? load(blk + kQs + 256 + 32 * h) : _mm256_setzero_si256();
      for (int k = 0; k < 4; k++) {
        __m256i raw = load(blk + kQs + 64 * k + 32 * h);
        w[k] = _mm256_and_si256(raw, m4);
        w[k + 4] = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
        if (Five) {  // bit 8b + k -> bit 4 of byte b, and bit 8b + 4 + k likewise
          w[k] = _mm256_or_si256(w[k], _mm256_and_si256(_mm256_slli_epi32(hb, 4 - k), m10));
          w[k + 4] = _mm256_or_si256(w[k + 4], _mm256_and_si256(_mm256_srli_epi32(hb, k), m10));
        }
      }
      const __m256 dw = load_f16x8(blk + 16 * h);
      const __m256 mw = HasMin ? load_f16x8(blk + 32 + 16 * h) : _mm256_setzero_ps();
      for (int t = 0; t < T; t++) {
        const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
        __m256i s;
        if (Five) {  // q <= 31: pairs <= 7874, four fit int16
          __m256i a = _mm256_maddubs_epi16(w[0], bcast(xb + 8)), c = _mm256_maddubs_epi16(w[4], bcast(xb + 24));
          for (int k = 1; k < 4; k++) {
            a = _mm256_add_epi16(a, _mm256_maddubs_epi16(w[k], bcast(xb + 8 + 4 * k)));
            c = _mm256_add_epi16(c, _mm256_maddubs_epi16(w[k + 4], bcast(xb + 24 + 4 * k)));
          }
          s = _mm256_add_epi32(_mm256_madd_epi16(a, ones), _mm256_madd_epi16(c, ones));
        } else {  // q <= 15: pairs <= 3810, eight fit int16
          __m256i a = _mm256_maddubs_epi16(w[0], bcast(xb + 8));
          for (int k = 1; k < 4; k++) a = _mm256_add_epi16(a, _mm256_maddubs_epi16(w[k], bcast(xb + 8 + 4 * k)));
          for (int k = 0; k < 4; k++) a = _mm256_add_epi16(a, _mm256_maddubs_epi16(w[k + 4], bcast(xb + 24 + 4 * k)));
          s = _mm256_madd_epi16(a, ones);
        }
        const float dx = ldf(xb);
        if (HasMin) {  // + m s, s the Q8_1 block's float at the place of the sum
          const __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(s), dw);
          acc[t] = _mm256_add_ps(acc[t], _mm256_fmadd_ps(dot, _mm256_set1_ps(dx), _mm256_mul_ps(mw, _mm256_set1_ps(ldf(xb + 4)))));
        } else {
          s = _mm256_sub_epi32(s, _mm256_set1_epi32(16 * ld32(xb + 4)));
          acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), dw), _mm256_set1_ps(dx), acc[t]);
        }
      }
    }
    for (int t = 0; t < T; t++) _mm256_maskstore_ps(y + t * ldy, mask, acc[t]);
  }
};
template <int T> struct Q4_1Tile : LegacyTileImpl<T, true, false> {};
template <int T> struct Q5_0Tile : LegacyTileImpl<T, false, true> {};
template <int T> struct Q5_1Tile : LegacyTileImpl<T, true, true> {};

// ---- IQ4_NL / MXFP4: nibble -> int8 value by pshufb ----

template <int T, bool Mx>
struct CodebookTileImpl {
  static void run(const uint8_t* wg, int h, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __m256i mask,
                  const uint8_t* pf) {
    __m256 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    // MXFP4: the values plus 12 (0..24, unsigned: no sign trick; 12 sum x comes off after)
    const __m256i table = Mx ? _mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0,
                                                12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0)
                             : _mm256_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
                                                -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kCodebookGroupBlock;
      if (pf) prefetch_block(pf + b * sparrow::kCodebookGroupBlock, sparrow::kCodebookGroupBlock);
      __m256i ws[8], wa[8];  // values (IQ4_NL: signed; MXFP4: plus 12), and magnitudes (IQ4_NL)
      for (int k = 0; k < 4; k++) {
        __m256i raw = load(blk + 32 + 64 * k + 32 * h);
        ws[k] = _mm256_shuffle_epi8(table, _mm256_and_si256(raw, m4));
        ws[k + 4] = _mm256_shuffle_epi8(table, _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4));
      }
      if (!Mx)
        for (int k = 0; k < 8; k++) wa[k] = _mm256_sign_epi8(ws[k], ws[k]);
      const __m256 dw = Mx ? e8m0_half_x8(blk + 8 * h) : load_f16x8(blk + 16 * h);
      for (int t = 0; t < T; t++) {
        const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
        // value k covers activations 4k.. (k < 4) and 16 + 4(k-4).. (k >= 4)
        auto xk = [&](int k) { return bcast(xb + 8 + (k < 4 ? 4 * k : 16 + 4 * (k - 4))); };
        __m256i s;
        if (Mx) {  // v + 12 <= 24: pairs <= 6096, four fit int16
          __m256i a = _mm256_maddubs_epi16(ws[0], xk(0)), c = _mm256_maddubs_epi16(ws[4], xk(4));
          for (int k = 1; k < 4; k++) {
            a = _mm256_add_epi16(a, _mm256_maddubs_epi16(ws[k], xk(k)));
            c = _mm256_add_epi16(c, _mm256_maddubs_epi16(ws[k + 4], xk(k + 4)));
          }
          s = _mm256_sub_epi32(_mm256_add_epi32(_mm256_madd_epi16(a, ones), _mm256_madd_epi16(c, ones)), _mm256_set1_epi32(12 * ld32(xb + 4)));
        } else {  // |v| <= 127: pairs <= 32258, one at a time
          s = _mm256_setzero_si256();
          for (int k = 0; k < 8; k++)
            s = _mm256_add_epi32(s, _mm256_madd_epi16(_mm256_maddubs_epi16(wa[k], _mm256_sign_epi8(xk(k), ws[k])), ones));
        }
        acc[t] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(s), dw), _mm256_set1_ps(ldf(xb)), acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm256_maskstore_ps(y + t * ldy, mask, acc[t]);
  }
};
template <int T> struct IQ4_NLTile : CodebookTileImpl<T, false> {};
template <int T> struct MXFP4Tile : CodebookTileImpl<T, true> {};

// ---- IQ4_XS: codebook nibbles in Q4_K's arrangement, int8 scales per 32 ----

template <int T>
struct IQ4_XSTile {
  static void run(const uint8_t* wg, int h, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __m256i mask,
                  const uint8_t* pf) {
    __m256 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i table = _mm256_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
                                           -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kIQ4_XSGroupBlock;
      if (pf) prefetch_block(pf + b * sparrow::kIQ4_XSGroupBlock, sparrow::kIQ4_XSGroupBlock);
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      __m256i isum[T];
      for (int t = 0; t < T; t++) isum[t] = _mm256_setzero_si256();
      // sub-blocks in pairs (j = 2c + hi) sharing their chunks: the nibble pick is a constant
      for (int c = 0; c < 4; c++) {
        __m256i raw[8];
        for (int k = 0; k < 8; k++) raw[k] = load(blk + 160 + 64 * (8 * c + k) + 32 * h);
        for (int hi = 0; hi < 2; hi++) {
          const int j = 2 * c + hi;
          // (sc, sc) int16 pairs per row lane, from the sign-extended int8 scales
          const __m256i s32 = _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 32 + 16 * j + 8 * h)));
          const __m256i sc = _mm256_or_si256(_mm256_and_si256(s32, _mm256_set1_epi32(0xffff)), _mm256_slli_epi32(s32, 16));
          __m256i ws[8], wa[8];
          for (int k = 0; k < 8; k++) {
            ws[k] = _mm256_shuffle_epi8(table, hi ? _mm256_and_si256(_mm256_srli_epi16(raw[k], 4), m4) : _mm256_and_si256(raw[k], m4));
            wa[k] = _mm256_sign_epi8(ws[k], ws[k]);
          }
          for (int t = 0; t < T; t++) {
            const uint8_t* xq = xs + t * xrow + sparrow::kQ8KAQs + 32 * j;
            // |v| <= 127: pairs <= 32258, each to int32 with the scale
            __m256i v = _mm256_madd_epi16(_mm256_maddubs_epi16(wa[0], _mm256_sign_epi8(bcast(xq), ws[0])), sc);
            for (int k = 1; k < 8; k++)
              v = _mm256_add_epi32(v, _mm256_madd_epi16(_mm256_maddubs_epi16(wa[k], _mm256_sign_epi8(bcast(xq + 4 * k), ws[k])), sc));
            isum[t] = _mm256_add_epi32(isum[t], v);
          }
        }
      }
      const __m256 d = load_f16x8(blk + 16 * h);
      for (int t = 0; t < T; t++)
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(ldf(xs + t * xrow)), _mm256_mul_ps(d, _mm256_cvtepi32_ps(isum[t])), acc[t]);
    }
    for (int t = 0; t < T; t++) _mm256_maskstore_ps(y + t * ldy, mask, acc[t]);
  }
};

// ---- Q3_K / Q2_K: 2-bit values 4 to a byte (+ Q3_K's third bits), scales per 16 ----

// (sc, sc) int16 pairs per row lane: the even (e = 0) or odd (e = 1) int16 of each pair
inline __m256i pick_pair(__m256i pair, int e) {
  return e ? _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(pair, 0xf5), 0xf5)
           : _mm256_shufflehi_epi16(_mm256_shufflelo_epi16(pair, 0xa0), 0xa0);
}

template <int T, bool Q3>
struct Q23_KTileImpl {
  static constexpr int kBlock = Q3 ? sparrow::kQ3_KGroupBlock : sparrow::kQ2_KGroupBlock;
  static constexpr int kLow = Q3 ? 288 : 320;  // the 2-bit chunks
  static void run(const uint8_t* wg, int h, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __m256i mask,
                  const uint8_t* pf) {
    __m256 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_ps();
    const __m256i m3 = _mm256_set1_epi8(3), m4 = _mm256_set1_epi8(4), low4 = _mm256_set1_epi16(0x0f);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      if (pf) prefetch_block(pf + b * kBlock, kBlock);
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      __m256i isum[T], csum[T];
      for (int t = 0; t < T; t++) isum[t] = csum[t] = _mm256_setzero_si256();
      // sub-blocks in pairs (s = 2p + e), so that every shift count and pair pick is a constant
      for (int p = 0; p < 8; p++) {
        const __m256i hb = Q3 ? load(blk + 1312 + 64 * p + 32 * h) : _mm256_setzero_si256();
        __m256i pair = Q3 ? _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 32 * p + 16 * h)))
                          : _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 64 + 32 * p + 16 * h)));
        if (!Q3) pair = _mm256_and_si256(pair, low4);
      for (int e = 0; e < 2; e++) {
        const int s = 2 * p + e;
        const __m256i lo = load(blk + kLow + 64 * s + 32 * h);
        __m256i w[4];
        for (int i = 0; i < 4; i++) {
          w[i] = _mm256_and_si256(_mm256_srli_epi16(lo, 2 * i), m3);
          if (Q3) {  // bit i + 4e of the byte -> bit 2
            const int k = i + 4 * e - 2;
            const __m256i t3 = k >= 0 ? _mm256_srli_epi16(hb, k) : _mm256_slli_epi16(hb, -k);
            w[i] = _mm256_or_si256(w[i], _mm256_and_si256(t3, m4));
          }
        }
        const __m256i sc = pick_pair(pair, e);
        for (int t = 0; t < T; t++) {
          const uint8_t* xq = xs + t * xrow + sparrow::kQ8KAQs + 16 * s;
          // q <= 7: pairs <= 1778, four fit int16
          __m256i a = _mm256_maddubs_epi16(w[0], bcast(xq));
          for (int i = 1; i < 4; i++) a = _mm256_add_epi16(a, _mm256_maddubs_epi16(w[i], bcast(xq + 4 * i)));
          isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(a, sc));
        }
      }
      }
      // Q3_K: sum sc bsum (the -4 offset); Q2_K: sum m bsum (the mins)
      for (int p = 0; p < 8; p++) {
        const __m256i sp = Q3 ? _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 32 * p + 16 * h)))
                              : _mm256_srli_epi16(_mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 64 + 32 * p + 16 * h))), 4);
        for (int t = 0; t < T; t++)
          csum[t] = _mm256_add_epi32(csum[t], _mm256_madd_epi16(sp, bcast(xs + t * xrow + sparrow::kQ8KABsums + 4 * p)));
      }
      const __m256 d = load_f16x8(blk + 16 * h);
      for (int t = 0; t < T; t++) {
        __m256 v;
        if (Q3) {
          v = _mm256_mul_ps(d, _mm256_cvtepi32_ps(_mm256_sub_epi32(isum[t], _mm256_slli_epi32(csum[t], 2))));
        } else {
          const __m256 dmin = load_f16x8(blk + 32 + 16 * h);
          v = _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(isum[t])), _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(csum[t])));
        }
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(ldf(xs + t * xrow)), v, acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm256_maskstore_ps(y + t * ldy, mask, acc[t]);
  }
};
template <int T> struct Q3_KTile : Q23_KTileImpl<T, true> {};
template <int T> struct Q2_KTile : Q23_KTileImpl<T, false> {};

}  // namespace

#define SP_QMM_AVX2_EXTRA(name, Tile, block, nbdiv, xbytes)                                              \
  extern "C" void sp_mm_##name##_avx2(SP_QMM_ARGS) {                                                      \
    int64_t nb = cols / nbdiv;                                                                            \
    run_tiles<Tile, 4>(w, nb * block, static_cast<const uint8_t*>(xq), nb * xbytes, nb, n, y, ldy, g0, g1, rlimit); \
  }
SP_QMM_AVX2_EXTRA(q4_1, Q4_1Tile, sparrow::kQ4_1GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX2_EXTRA(q5_0, Q5_0Tile, sparrow::kQ5_0GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX2_EXTRA(q5_1, Q5_1Tile, sparrow::kQ5_1GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX2_EXTRA(iq4_nl, IQ4_NLTile, sparrow::kCodebookGroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX2_EXTRA(mxfp4, MXFP4Tile, sparrow::kCodebookGroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX2_EXTRA(iq4_xs, IQ4_XSTile, sparrow::kIQ4_XSGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_AVX2_EXTRA(q3_k, Q3_KTile, sparrow::kQ3_KGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_AVX2_EXTRA(q2_k, Q2_KTile, sparrow::kQ2_KGroupBlock, 256, sparrow::kQ8KABytes)
