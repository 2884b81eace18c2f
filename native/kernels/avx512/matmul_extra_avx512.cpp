// AVX-512 (F, BW, VL, DQ, VNNI) matmul kernels of the later weight types over the
// repacked layouts of kernels/layout.h: Q4_1 / Q5_0 / Q5_1, IQ4_NL / MXFP4 / IQ4_XS
// (codebooks), and Q2_K / Q3_K (2-bit values). extern "C" entry points only; the helpers
// here and in common_avx512.h have internal linkage.
//
// As matmul_avx512.cpp: a tile is one 16-row group (one zmm lane per row) x T tokens
// (T <= 8, run by common_avx512.h's run_tiles). Per block the group's quants are unpacked
// once into registers and reused for the T tokens; vpdpbusd multiplies them, as unsigned
// bytes, with 4 broadcast activation bytes into each row's lane. Signed values are made
// unsigned by an offset (the codebooks: +128 for IQ4_NL / IQ4_XS, +12 for MXFP4; Q3_K's
// -4 and Q5_0's -16 likewise) that comes off afterwards with the activation block sums.
// All of that is exact integer arithmetic; then a few float operations per block, in
// the same order for every token whatever T, so the bits do not depend on n.
// Decode (n = 1, T = 1) streams the weights: a single pass over each group block (all
// the work on a cache line done while it is in L1), with the lines kAhead bytes ahead
// prefetched as it goes.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "kernels/avx512/common_avx512.h"

namespace {

// vpternlogd immediate for a | (b & c)
constexpr int kOrAnd = 0xf8;

// Prefetches the lines of `bytes` bytes from p (the weight stream, kAhead ahead).
inline void prefetch_lines(const uint8_t* p, int bytes) {
  for (int l = 0; l < bytes; l += 64) prefetch(p + l);
}

// 2^(e-128) for 16 E8M0 bytes (exact; e = 0, 1 give subnormals)
inline __m512 e8m0_half_x16(const uint8_t* p) {
  const __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(1)), 23);
  const __m512i sub = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), e);
  return _mm512_castsi512_ps(_mm512_mask_blend_epi32(_mm512_cmplt_epu32_mask(e, _mm512_set1_epi32(2)), normal, sub));
}

// The 16-entry codebooks plus their offset, as unsigned bytes, in each 128-bit lane (vpshufb).
inline __m512i iq4nl_table() {  // kIQ4NL + 128
  return _mm512_broadcast_i32x4(_mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, char(129), char(141), char(153), char(166),
                                              char(181), char(197), char(217), char(241)));
}
inline __m512i mxfp4_table() {  // kMXFP4 + 12
  return _mm512_broadcast_i32x4(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0));
}

// ---- Q4_1 / Q5_0 / Q5_1: 32-column blocks, BlockQ8A activations (d at 0, sum or s at 4, qs at 8) ----

template <int T, bool HasMin, bool Five>
struct LegacyTileImpl {
  static constexpr int kBlock = HasMin ? (Five ? sparrow::kQ5_1GroupBlock : sparrow::kQ4_1GroupBlock) : sparrow::kQ5_0GroupBlock;
  static constexpr int kQs = HasMin ? 64 : 32;
  static void run(const uint8_t* wg, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __mmask16 mask) {
    __m512 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f), m10 = _mm512_set1_epi8(0x10);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      prefetch_lines(blk + kAhead, kBlock);
      __m512i w[8];
      const __m512i hb = Five ? load(blk + kQs + 256) : _mm512_setzero_si512();
      for (int k = 0; k < 4; k++) {
        const __m512i raw = load(blk + kQs + 64 * k);
        w[k] = _mm512_and_si512(raw, m4);                            // values 4k..4k+3
        w[k + 4] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4);  // values 16+4k..
        if (Five) {  // bit 8b + k -> bit 4 of byte b, and bit 8b + 4 + k likewise
          w[k] = _mm512_ternarylogic_epi32(w[k], _mm512_slli_epi32(hb, 4 - k), m10, kOrAnd);
          w[k + 4] = _mm512_ternarylogic_epi32(w[k + 4], _mm512_srli_epi32(hb, k), m10, kOrAnd);
        }
      }
      const __m512 dw = load_f16x16(blk);
      const __m512 mw = HasMin ? load_f16x16(blk + 32) : _mm512_setzero_ps();
      for (int t = 0; t < T; t++) {
        const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
        __m512i s = dot8(w, xb + 8);
        const __m512 dx = _mm512_set1_ps(ldf(xb));
        if (HasMin) {  // + m s, s the Q8_1 block's float at the place of the sum
          const __m512 dot = _mm512_mul_ps(_mm512_cvtepi32_ps(s), dw);
          acc[t] = _mm512_add_ps(acc[t], _mm512_fmadd_ps(dot, dx, _mm512_mul_ps(mw, _mm512_set1_ps(ldf(xb + 4)))));
        } else {
          s = _mm512_sub_epi32(s, _mm512_set1_epi32(16 * ld32(xb + 4)));
          acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), dw), dx, acc[t]);
        }
      }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy, mask, acc[t]);
  }
};
template <int T> struct Q4_1Tile : LegacyTileImpl<T, true, false> {};
template <int T> struct Q5_0Tile : LegacyTileImpl<T, false, true> {};
template <int T> struct Q5_1Tile : LegacyTileImpl<T, true, true> {};

// ---- IQ4_NL / MXFP4: nibble -> value + offset by vpshufb, 32-column blocks ----

template <int T, bool Mx>
struct CodebookTileImpl {
  static void run(const uint8_t* wg, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __mmask16 mask) {
    constexpr int kOff = Mx ? 12 : 128;
    __m512 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i table = Mx ? mxfp4_table() : iq4nl_table();
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * sparrow::kCodebookGroupBlock;
      prefetch_lines(blk + kAhead, sparrow::kCodebookGroupBlock);
      __m512i w[8];
      for (int k = 0; k < 4; k++) {
        const __m512i raw = load(blk + 32 + 64 * k);
        w[k] = _mm512_shuffle_epi8(table, _mm512_and_si512(raw, m4));
        w[k + 4] = _mm512_shuffle_epi8(table, _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4));
      }
      const __m512 dw = Mx ? e8m0_half_x16(blk) : load_f16x16(blk);
      for (int t = 0; t < T; t++) {
        const uint8_t* xb = x + t * xrow + b * sparrow::kQ8ABytes;
        const __m512i s = _mm512_sub_epi32(dot8(w, xb + 8), _mm512_set1_epi32(kOff * ld32(xb + 4)));
        acc[t] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(s), dw), _mm512_set1_ps(ldf(xb)), acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy, mask, acc[t]);
  }
};
template <int T> struct IQ4_NLTile : CodebookTileImpl<T, false> {};
template <int T> struct MXFP4Tile : CodebookTileImpl<T, true> {};

// ---- IQ4_XS: codebook nibbles in Q4_K's arrangement, int8 scales per 32, BlockQ8KA activations ----

template <int T>
struct IQ4_XSTile {
  static void run(const uint8_t* wg, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __mmask16 mask) {
    constexpr int kBlock = sparrow::kIQ4_XSGroupBlock;
    __m512 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i m4 = _mm512_set1_epi8(0x0f);
    const __m512i table = iq4nl_table();
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      __m512i isum[T];
      for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
      // sub-blocks in pairs j = 2c + hi: the low (hi = 0) and high nibbles of the same 8
      // chunks. Few tokens (the GEMV): the chunks are loaded once and stay in registers for
      // both; larger tiles, short of registers, load them again from L1 rather than spill.
      constexpr bool kKeep = T <= 2;
      for (int c = 0; c < 4; c++) {
        prefetch_lines(blk + kAhead + 512 * c, c < 3 ? 512 : kBlock - 3 * 512);
        const uint8_t* qc = blk + 160 + 64 * 8 * c;
        __m512i raw[8];
        if (kKeep)
          for (int k = 0; k < 8; k++) raw[k] = load(qc + 64 * k);
        for (int hi = 0; hi < 2; hi++) {
          const int j = 2 * c + hi;
          const __m512i sc = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 32 + 16 * j)));
          __m512i w[8];
          for (int k = 0; k < 8; k++) {
            const __m512i r = kKeep ? raw[k] : load(qc + 64 * k);
            w[k] = _mm512_shuffle_epi8(table, hi ? _mm512_and_si512(_mm512_srli_epi16(r, 4), m4) : _mm512_and_si512(r, m4));
          }
          for (int t = 0; t < T; t++) {
            const uint8_t* xt = xs + t * xrow;
            // sum (v + 128) x - 128 sum x = sum v x (|.| <= 32 * 127 * 127), times the scale
            const __m512i v = _mm512_sub_epi32(dot8(w, xt + sparrow::kQ8KAQs + 32 * j),
                                               _mm512_set1_epi32(128 * ld16(xt + sparrow::kQ8KABsums32 + 2 * j)));
            isum[t] = _mm512_add_epi32(isum[t], _mm512_mullo_epi32(v, sc));
          }
        }
      }
      const __m512 d = load_f16x16(blk);
      for (int t = 0; t < T; t++)
        acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(ldf(xs + t * xrow)), _mm512_mul_ps(d, _mm512_cvtepi32_ps(isum[t])), acc[t]);
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy, mask, acc[t]);
  }
};

// ---- Q3_K / Q2_K: 2-bit values 4 to a byte (+ Q3_K's third bits), scales per 16 ----

template <int T, bool Q3>
struct Q23_KTileImpl {
  static constexpr int kBlock = Q3 ? sparrow::kQ3_KGroupBlock : sparrow::kQ2_KGroupBlock;
  static constexpr int kLow = Q3 ? 288 : 320;  // the 2-bit chunks
  static constexpr int kScales = Q3 ? 32 : 64;  // pairs of sub-block scale bytes
  static void run(const uint8_t* wg, int64_t nb, const uint8_t* x, int64_t xrow, float* y, int64_t ldy, __mmask16 mask) {
    __m512 acc[T];
    for (int t = 0; t < T; t++) acc[t] = _mm512_setzero_ps();
    const __m512i m3 = _mm512_set1_epi8(3), m4 = _mm512_set1_epi8(4), low4 = _mm512_set1_epi16(0x0f);
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      const uint8_t* xs = x + b * sparrow::kQ8KABytes;
      __m512i isum[T];
      for (int t = 0; t < T; t++) isum[t] = _mm512_setzero_si512();
      // sub-blocks in pairs (s = 2p + e): every shift count is a constant, and the two
      // dot products (each fits int16: |sum q x| <= 16 * 7 * 128) go as one int16 pair
      // per row lane into a vpdpwssd with the pair of scales
      for (int p = 0; p < 8; p++) {
        prefetch_lines(blk + kAhead + (kBlock / 8) * p, kBlock / 8);
        const __m512i hb = Q3 ? load(blk + 1312 + 64 * p) : _mm512_setzero_si512();
        const __m256i sb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kScales + 32 * p));
        const __m512i sc = Q3 ? _mm512_cvtepi8_epi16(sb) : _mm512_and_si512(_mm512_cvtepu8_epi16(sb), low4);
        __m512i w[2][4];
        for (int e = 0; e < 2; e++) {
          const __m512i lo = load(blk + kLow + 64 * (2 * p + e));
          for (int i = 0; i < 4; i++) {
            w[e][i] = _mm512_and_si512(_mm512_srli_epi16(lo, 2 * i), m3);
            if (Q3) {  // bit i + 4e of the byte -> bit 2
              const int k = i + 4 * e - 2;
              const __m512i t3 = k >= 0 ? _mm512_srli_epi16(hb, k) : _mm512_slli_epi16(hb, -k);
              w[e][i] = _mm512_ternarylogic_epi32(w[e][i], t3, m4, kOrAnd);
            }
          }
        }
        for (int t = 0; t < T; t++) {
          const uint8_t* xq = xs + t * xrow + sparrow::kQ8KAQs + 32 * p;
          const __m512i d0 = dot4(w[0], xq), d1 = dot4(w[1], xq + 16);
          // (d0, d1) as int16 pairs: d0 in the low half of each lane, d1 in the high half
          const __m512i pair = _mm512_mask_blend_epi16(__mmask32(0xaaaaaaaau), d0, _mm512_slli_epi32(d1, 16));
          isum[t] = _mm512_dpwssd_epi32(isum[t], pair, sc);
        }
      }
      // Q3_K: sum sc bsum (the -4 offset); Q2_K: sum m bsum (the mins); pairs per vpdpwssd
      __m512i csum[T];
      for (int t = 0; t < T; t++) csum[t] = _mm512_setzero_si512();
      for (int p = 0; p < 8; p++) {
        const __m256i sb = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + kScales + 32 * p));
        const __m512i sp = Q3 ? _mm512_cvtepi8_epi16(sb) : _mm512_srli_epi16(_mm512_cvtepu8_epi16(sb), 4);
        for (int t = 0; t < T; t++)
          csum[t] = _mm512_dpwssd_epi32(csum[t], sp, bcast(xs + t * xrow + sparrow::kQ8KABsums + 4 * p));
      }
      const __m512 d = load_f16x16(blk);
      for (int t = 0; t < T; t++) {
        __m512 v;
        if (Q3) {
          v = _mm512_mul_ps(d, _mm512_cvtepi32_ps(_mm512_sub_epi32(isum[t], _mm512_slli_epi32(csum[t], 2))));
        } else {
          const __m512 dmin = load_f16x16(blk + 32);
          v = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(isum[t])), _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(csum[t])));
        }
        acc[t] = _mm512_fmadd_ps(_mm512_set1_ps(ldf(xs + t * xrow)), v, acc[t]);
      }
    }
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy, mask, acc[t]);
  }
};
template <int T> struct Q3_KTile : Q23_KTileImpl<T, true> {};
template <int T> struct Q2_KTile : Q23_KTileImpl<T, false> {};

}  // namespace

#define SP_QMM_AVX512_EXTRA(name, Tile, block, nbdiv, xbytes)                                              \
  extern "C" void sp_mm_##name##_avx512(SP_QMM_ARGS) {                                                      \
    int64_t nb = cols / nbdiv;                                                                              \
    run_tiles<Tile>(w, nb * block, static_cast<const uint8_t*>(xq), nb * xbytes, nb, n, y, ldy, g0, g1, rlimit); \
  }
SP_QMM_AVX512_EXTRA(q4_1, Q4_1Tile, sparrow::kQ4_1GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX512_EXTRA(q5_0, Q5_0Tile, sparrow::kQ5_0GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX512_EXTRA(q5_1, Q5_1Tile, sparrow::kQ5_1GroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX512_EXTRA(iq4_nl, IQ4_NLTile, sparrow::kCodebookGroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX512_EXTRA(mxfp4, MXFP4Tile, sparrow::kCodebookGroupBlock, 32, sparrow::kQ8ABytes)
SP_QMM_AVX512_EXTRA(iq4_xs, IQ4_XSTile, sparrow::kIQ4_XSGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_AVX512_EXTRA(q3_k, Q3_KTile, sparrow::kQ3_KGroupBlock, 256, sparrow::kQ8KABytes)
SP_QMM_AVX512_EXTRA(q2_k, Q2_KTile, sparrow::kQ2_KGroupBlock, 256, sparrow::kQ8KABytes)
