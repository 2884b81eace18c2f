// AVX-512 (F, BW, VL, VNNI) sparse matmul kernels (Q4_0, Q8_0, Q4_1, Q5_0, Q5_1, IQ4_NL, MXFP4, Q4_K, Q5_K, Q6_K) over the channel-major layouts of
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

// Channel kinds: 4-bit nibbles (Q4_0, Q4_1, Q4_K), bytes q + 128 (Q8_0), nibbles plus high
// 2 bits (Q6_K), nibbles plus a fifth bit (Q5_K, Q5_0, Q5_1), IQ4_NL codebook values plus
// 128 and MXFP4 ones plus 12 (both unsigned, the offset taken out with the block sum).
enum Kind { kNib = 0, kByte = 1, kSix = 2, kFive = 3, kIQ4 = 4, kMx = 5 };

// The four channel vectors of channels c[0..3] for rows 64 h .. 64 h + 63, as bytes in
// layout slot order.
template <int K>
inline __m512i channel_half(const uint8_t* ch, int h) {
  const __m512i m4 = _mm512_set1_epi8(0x0f);
  if (K == kByte) return load(ch + 64 * h);
  const __m512i raw = load(ch);
  __m512i v = h ? _mm512_and_si512(_mm512_srli_epi16(raw, 4), m4) : _mm512_and_si512(raw, m4);
  if (K == kIQ4)
    v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_setr_epi8(1, 24, 45, 63, 79, 93, 106, 118, -127, -115, -103,
                                                                  -90, -75, -59, -39, -15)), v);
  if (K == kMx)
    v = _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0)), v);
  if (K == kFive) {  // 64 fifth bits of the half, one per slot
    uint64_t bits;
    __builtin_memcpy(&bits, ch + 64 + 8 * h, 8);
    v = _mm512_or_si512(v, _mm512_maskz_mov_epi8(__mmask64(bits), _mm512_set1_epi8(0x10)));
  }
  if (K == kSix) {
    const __m256i y = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ch + 64));
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(y, 4 * h)),
                                         _mm256_srli_epi16(y, 4 * h + 2), 1);
    v = _mm512_or_si512(v, _mm512_and_si512(_mm512_slli_epi16(z, 4), _mm512_set1_epi8(0x30)));
  }
  return v;
}

// s[t][j] (rows 16j..16j+15) += sum over the channels c set in `mask` of q[row][c] * x_t[c],
// where channel c's vector is at ch0 + c * chan and x_t[c] at xs[t * xrow + c].
template <int T, int K>
inline void channels(const uint8_t* ch0, int chan, const uint8_t* xs, int64_t xrow, uint32_t mask, __m512i s[T][8]) {
  while (mask) {
    int c[4];
    uint32_t keep[4];  // 0xff where channel c[k] is a real one of the quad, else 0
    for (int k = 0; k < 4; k++) {
      if (mask) {
        c[k] = __builtin_ctz(mask);
        mask &= mask - 1;
        keep[k] = 0xffu;
      } else {
        c[k] = c[0];
        keep[k] = 0;
      }
    }
    __m512i xv[T];
    for (int t = 0; t < T; t++) {
      const uint8_t* xt = xs + t * xrow;
      const uint32_t v = (uint32_t(xt[c[0]]) & keep[0]) | (uint32_t(xt[c[1]]) & keep[1]) << 8 |
                         (uint32_t(xt[c[2]]) & keep[2]) << 16 | (uint32_t(xt[c[3]]) & keep[3]) << 24;
      xv[t] = _mm512_set1_epi32(int32_t(v));
    }
    for (int h = 0; h < 2; h++) {
      __m512i r[4];
      interleave4(channel_half<K>(ch0 + c[0] * chan, h), channel_half<K>(ch0 + c[1] * chan, h),
                  channel_half<K>(ch0 + c[2] * chan, h), channel_half<K>(ch0 + c[3] * chan, h), r);
      for (int t = 0; t < T; t++)
        for (int j = 0; j < 4; j++) s[t][4 * h + j] = _mm512_dpbusd_epi32(s[t][4 * h + j], r[j], xv[t]);
    }
  }
}

// Bit c of the result: qs[t * xrow + c] != 0 for some token t < T (32 channels).
template <int T>
inline uint32_t active32(const uint8_t* qs, int64_t xrow) {
  __m256i any = _mm256_setzero_si256();
  for (int t = 0; t < T; t++) any = _mm256_or_si256(any, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + t * xrow)));
  return _mm256_test_epi8_mask(any, any);
}

// Software prefetch: a skip pattern breaks the hardware stream prefetcher, so the kernels
// prefetch the active channel vectors (and the scales) a few blocks ahead themselves.
// kAheadBlocks: 32-column blocks ahead (Q4_0/Q8_0); kAheadSub: K-quant sub-blocks ahead.
constexpr int64_t kAheadBlocks = 2, kAheadSub = 2;
inline void prefetch(const uint8_t* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
inline void prefetch_bytes(const uint8_t* p, int bytes) {
  for (int l = 0; l < bytes; l += 64) prefetch(p + l);
  prefetch(p + bytes - 1);
}
// The channel vectors of the channels set in mask (channel c at ch0 + c * chan).
inline void prefetch_channels(const uint8_t* ch0, int chan, uint32_t mask) {
  for (; mask; mask &= mask - 1) prefetch_bytes(ch0 + __builtin_ctz(mask) * chan, chan);
}
// Block a of a group of nb blocks at wg, or block a - nb of the next group (nullptr: none).
inline const uint8_t* ahead_block(const uint8_t* wg, const uint8_t* next, int64_t nb, int64_t block, int64_t a) {
  if (a < nb) return wg + a * block;
  return next && a - nb < nb ? next + (a - nb) * block : nullptr;
}

template <int T>
inline void store_rows(const __m512 acc[T][8], float* y, int64_t ldy, int64_t rows_left) {
  for (int j = 0; j < 8; j++) {
    const int64_t left = rows_left - 16 * j;
    if (left <= 0) break;
    const __mmask16 mask = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
    for (int t = 0; t < T; t++) _mm512_mask_storeu_ps(y + t * ldy + 16 * j, mask, acc[t][j]);
  }
}

// 2^(e-128) for 16 E8M0 bytes (exact; e = 0, 1 give subnormals), as the dense kernels.
inline __m512 e8m0_half_x16(const uint8_t* p) {
  const __m512i e = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512i normal = _mm512_slli_epi32(_mm512_sub_epi32(e, _mm512_set1_epi32(1)), 23);
  const __m512i sub = _mm512_sllv_epi32(_mm512_set1_epi32(0x00200000), e);
  return _mm512_castsi512_ps(_mm512_mask_blend_epi32(_mm512_cmplt_epi32_mask(e, _mm512_set1_epi32(2)), normal, sub));
}

// The 32-column types.
enum Var { vQ4_0, vQ8_0, vQ4_1, vQ5_0, vQ5_1, vIQ4, vMx };
template <int V>
struct Var32 {
  static constexpr bool kMin = V == vQ4_1 || V == vQ5_1, kFive5 = V == vQ5_0 || V == vQ5_1;
  static constexpr int kHead = V == vMx ? sparrow::kSparseMXFP4Head : kMin ? 2 * sparrow::kSparseScaleBytes
                                                                           : sparrow::kSparseScaleBytes;
  static constexpr int kChan = V == vQ8_0 ? sparrow::kSparseQ8_0Channel : kFive5 ? sparrow::kSparseQ5_KChannel
                                                                                : sparrow::kSparseQ4_0Channel;
  static constexpr int kBlock = kHead + 32 * kChan;
  static constexpr int kKind = V == vQ8_0 ? kByte : kFive5 ? kFive : V == vIQ4 ? kIQ4 : V == vMx ? kMx : kNib;
  // taken out of the integer sum with the block's sum of x (0: none; Q4_1/Q5_1 have a float there)
  static constexpr int32_t kOff = V == vQ4_0 ? 8 : V == vQ8_0 || V == vIQ4 ? 128 : V == vQ5_0 ? 16 : V == vMx ? 12 : 0;
};

// BlockQ8A activations (d at 0, sum (or Q8A1's float s) at 4, qs at 8; 40 bytes). Per block
// and 16 rows the dense kernels' float step: Q4_1/Q5_1 acc + fma(float(s) * d, dx, m * s),
// the others fma(float(s - off * sx) * d, dx, acc).
template <int T, int V>
struct Tile32 {
  static uint64_t run(const uint8_t* wg, const uint8_t* next, int64_t nb, const uint8_t* x, int64_t xrow, float* y,
                      int64_t ldy, int64_t rows_left) {
    using L = Var32<V>;
    __m512 acc[T][8];
    for (int t = 0; t < T; t++)
      for (int j = 0; j < 8; j++) acc[t][j] = _mm512_setzero_ps();
    uint64_t bytes = 0;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * L::kBlock;
      const uint8_t* xs = x + b * 40 + 8;
      const uint32_t active = active32<T>(xs, xrow);
      if (const uint8_t* pb = ahead_block(wg, next, nb, L::kBlock, b + kAheadBlocks)) {
        const int64_t a = (b + kAheadBlocks) % nb;
        prefetch_bytes(pb, L::kHead);
        prefetch_channels(pb + L::kHead, L::kChan, active32<T>(x + a * 40 + 8, xrow));
      }
      bytes += L::kHead + uint64_t(__builtin_popcount(active)) * L::kChan;
      __m512i s[T][8];
      for (int t = 0; t < T; t++)
        for (int j = 0; j < 8; j++) s[t][j] = _mm512_setzero_si512();
      channels<T, L::kKind>(blk + L::kHead, L::kChan, xs, xrow, active, s);
      for (int j = 0; j < 8; j++) {
        const __m512 dw = V == vMx ? e8m0_half_x16(blk + 16 * j)
                                   : _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * j)));
        for (int t = 0; t < T; t++) {
          const uint8_t* xb = x + t * xrow + b * 40;
          if (L::kMin) {
            const __m512 mw = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 256 + 32 * j)));
            const __m512 dot = _mm512_mul_ps(_mm512_cvtepi32_ps(s[t][j]), dw);
            acc[t][j] = _mm512_add_ps(acc[t][j], _mm512_fmadd_ps(dot, _mm512_set1_ps(ldf(xb)),
                                                                 _mm512_mul_ps(mw, _mm512_set1_ps(ldf(xb + 4)))));
          } else {
            const __m512i si = L::kOff ? _mm512_sub_epi32(s[t][j], _mm512_set1_epi32(L::kOff * ld32(xb + 4))) : s[t][j];
            acc[t][j] = _mm512_fmadd_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(si), dw), _mm512_set1_ps(ldf(xb)), acc[t][j]);
          }
        }
      }
    }
    store_rows<T>(acc, y, ldy, rows_left);
    return bytes;
  }
};

inline int32_t ld16(const uint8_t* p) {
  int16_t v;
  __builtin_memcpy(&v, p, 2);
  return v;
}
inline __m512i bytes16_u(const uint8_t* p) { return _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m512i bytes16_s(const uint8_t* p) { return _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

// Q4_K / Q6_K: BlockQ8KA activations (d at 0, bsums at 4, bsums32 at 36, qs at 52; 308 bytes).
template <int T, int Ty>
struct TileK {
  static uint64_t run(const uint8_t* wg, const uint8_t* next, int64_t nb, const uint8_t* x, int64_t xrow, float* y,
                      int64_t ldy, int64_t rows_left) {
    constexpr bool Q6 = Ty == 6, Q5 = Ty == 5;
    constexpr int kChan = Q6 ? sparrow::kSparseQ6_KChannel : Q5 ? sparrow::kSparseQ5_KChannel : 64;
    constexpr int kHead = Q6 ? sparrow::kSparseQ6_KHead : sparrow::kSparseQ4_KHead;
    constexpr int kBlock = Q6 ? sparrow::kSparseQ6_KBlock : Q5 ? sparrow::kSparseQ5_KBlock : sparrow::kSparseQ4_KBlock;
    __m512 acc[T][8];
    for (int t = 0; t < T; t++)
      for (int j = 0; j < 8; j++) acc[t][j] = _mm512_setzero_ps();
    uint64_t bytes = 0;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      const uint8_t* xb = x + b * 308;
      const uint8_t* ch0 = blk + kHead;
      uint32_t active[8];
      int n_active = 0;
      for (int j = 0; j < 8; j++) n_active += __builtin_popcount(active[j] = active32<T>(xb + 52 + 32 * j, xrow));
      bytes += kHead + uint64_t(n_active) * kChan;
      __m512i isum[T][8], csum[T][8];
      for (int t = 0; t < T; t++)
        for (int h = 0; h < 8; h++) isum[t][h] = csum[t][h] = _mm512_setzero_si512();
      constexpr int kSub = Q6 ? 16 : 8, kCols = 256 / kSub;
      const uint8_t* next_blk = ahead_block(wg, next, nb, kBlock, b + 1);
      for (int sb = 0; sb < kSub; sb++) {
        // The next block's header, a slice per sub-block, and the active channels of the
        // sub-block kAheadSub ahead.
        if (next_blk)
          for (int l = (sb * kHead / kSub) & ~63; l < (sb + 1) * kHead / kSub; l += 64) prefetch(next_blk + l);
        {
          const int64_t i = b * kSub + sb + kAheadSub, ab = i / kSub;
          const int asb = int(i % kSub);
          if (const uint8_t* pb = ahead_block(wg, next, nb, kBlock, ab)) {
            const uint8_t* qs = x + (ab % nb) * 308 + 52;
            const uint32_t am = Q6 ? (active32<T>(qs + 32 * (asb >> 1), xrow) >> (16 * (asb & 1))) & 0xffffu
                                   : active32<T>(qs + 32 * asb, xrow);
            prefetch_channels(pb + kHead + kChan * kCols * asb, kChan, am);
          }
        }
        // Q4_K: scales at 512 + 128 j (unsigned), mins at 1536 + 128 j, with bsums32;
        // Q6_K: int8 scales at 256 + 128 s, with bsums (the -32 offset).
        const uint8_t* sc = blk + (Q6 ? 256 : 512) + 128 * sb;
        for (int h = 0; h < 8; h++) {
          const __m512i f = Q6 ? bytes16_s(sc + 16 * h) : bytes16_u(blk + 1536 + 128 * sb + 16 * h);
          for (int t = 0; t < T; t++)
            csum[t][h] = _mm512_add_epi32(csum[t][h], _mm512_mullo_epi32(f, _mm512_set1_epi32(
                                                                            ld16(xb + t * xrow + (Q6 ? 4 : 36) + 2 * sb))));
        }
        const uint32_t m = Q6 ? (active[sb >> 1] >> (16 * (sb & 1))) & 0xffffu : active[sb];
        if (!m) continue;
        __m512i s[T][8];
        for (int t = 0; t < T; t++)
          for (int h = 0; h < 8; h++) s[t][h] = _mm512_setzero_si512();
        channels<T, Q6 ? kSix : Q5 ? kFive : kNib>(ch0 + kChan * kCols * sb, kChan, xb + 52 + kCols * sb, xrow, m, s);
        for (int h = 0; h < 8; h++) {
          const __m512i f = Q6 ? bytes16_s(sc + 16 * h) : bytes16_u(sc + 16 * h);
          for (int t = 0; t < T; t++) isum[t][h] = _mm512_add_epi32(isum[t][h], _mm512_mullo_epi32(s[t][h], f));
        }
      }
      for (int h = 0; h < 8; h++) {
        const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 32 * h)));
        for (int t = 0; t < T; t++) {
          const __m512 dx = _mm512_set1_ps(ldf(xb + t * xrow));
          if (Q6) {
            const __m512i v = _mm512_sub_epi32(isum[t][h], _mm512_slli_epi32(csum[t][h], 5));
            acc[t][h] = _mm512_fmadd_ps(dx, _mm512_mul_ps(d, _mm512_cvtepi32_ps(v)), acc[t][h]);
          } else {
            const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 256 + 32 * h)));
            const __m512 v = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(isum[t][h])),
                                           _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(csum[t][h])));
            acc[t][h] = _mm512_fmadd_ps(dx, v, acc[t][h]);
          }
        }
      }
    }
    store_rows<T>(acc, y, ldy, rows_left);
    return bytes;
  }
};

}  // namespace

#include "sparse/sparse_entries.h"

SP_SPARSE_ENTRIES(avx512)
