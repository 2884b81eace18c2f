// AVX2 sparse matmul kernels over the channel-major layouts of sparse/layout.h. extern "C"
// entry points only; helpers have internal linkage.
//
// As the AVX-512 kernels, four active channels at a time: each channel vector half (64
// rows, 64 bytes) is two ymm; unpacklo/hi_epi8 then _epi16 within 128-bit lanes turn four
// channels' ymm e of half h into four vectors j whose 32-bit lanes hold the four quants of
// rows 64h + 16j + 8e .. +7 (the layout's slot order makes them consecutive). pmaddubsw
// (unsigned quant x signed activation) gives int16 pair sums, pmaddwd with ones the int32
// row sums. The int16 pairs cannot saturate: 4-, 5- and 6-bit quants (and MXFP4's values
// plus 12) times |x| <= 127 stay below 2 * 63 * 127; Q8_0's q + 128 is turned back into
// signed q and, as IQ4_NL's signed values, multiplied as |q| x sign(x, q) (|q| <= 128: at
// most 2 * 128 * 127 = 32512). The float steps per block
// and 8 rows are the dense AVX2 kernels' (kernels/avx2/matmul_avx2.cpp), so the results
// are bit-identical to them.
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
inline int32_t ld16(const uint8_t* p) {
  int16_t v;
  __builtin_memcpy(&v, p, 2);
  return v;
}
inline float ldf(const uint8_t* p) {
  float v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline __m256i load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256 load_f16x8(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256i bytes8_u(const uint8_t* p) { return _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }
inline __m256i bytes8_s(const uint8_t* p) { return _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))); }

// Channel kinds: 4-bit nibbles (Q4_0, Q4_1, Q4_K), bytes q + 128 (Q8_0), nibbles plus high
// 2 bits (Q6_K), nibbles plus a fifth bit (Q5_K, Q5_0, Q5_1), IQ4_NL codebook values
// (signed, multiplied as Q8_0's) and MXFP4 ones plus 12 (unsigned, the offset taken out
// with the block sum).
enum Kind { kNib = 0, kByte = 1, kSix = 2, kFive = 3, kIQ4 = 4, kMx = 5 };

// ymm e (slots 32e .. 32e + 31) of half h of a channel vector, as unsigned quants (for
// kByte: the signed q, see channels()).
template <int K>
inline __m256i channel_part(const uint8_t* ch, int h, int e) {
  const __m256i m4 = _mm256_set1_epi8(0x0f);
  if (K == kByte) return _mm256_xor_si256(load(ch + 64 * h + 32 * e), _mm256_set1_epi8(char(0x80)));
  const __m256i raw = load(ch + 32 * e);
  __m256i v = h ? _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4) : _mm256_and_si256(raw, m4);
  if (K == kIQ4)
    v = _mm256_shuffle_epi8(_mm256_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
                                             -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113), v);
  if (K == kMx)
    v = _mm256_shuffle_epi8(_mm256_setr_epi8(12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0,
                                             12, 13, 14, 15, 16, 18, 20, 24, 12, 11, 10, 9, 8, 6, 4, 0), v);
  if (K == kFive) {  // the 32 fifth bits of slots 32e .. 32e + 31, one byte each
    const __m256i sel = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1,
                                         2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
    const __m256i b = _mm256_and_si256(_mm256_shuffle_epi8(_mm256_set1_epi32(ld32(ch + 64 + 8 * h + 4 * e)), sel), bit);
    v = _mm256_or_si256(v, _mm256_and_si256(_mm256_cmpeq_epi8(b, bit), _mm256_set1_epi8(0x10)));
  }
  if (K == kSix) {
    const __m256i hb = _mm256_srli_epi16(load(ch + 64), 4 * h + 2 * e);
    v = _mm256_or_si256(v, _mm256_and_si256(_mm256_slli_epi16(hb, 4), _mm256_set1_epi8(0x30)));
  }
  return v;
}

// s[t][q] (rows 8q .. 8q + 7) += sum over the channels c set in `mask` of q[row][c] * x_t[c].
template <int T, int K>
inline void channels(const uint8_t* ch0, int chan, const uint8_t* xs, int64_t xrow, uint32_t mask, __m256i s[T][16]) {
  const __m256i ones = _mm256_set1_epi16(1);
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
    __m256i xv[T];
    for (int t = 0; t < T; t++) {
      const uint8_t* xt = xs + t * xrow;
      const uint32_t v = (uint32_t(xt[c[0]]) & keep[0]) | (uint32_t(xt[c[1]]) & keep[1]) << 8 |
                         (uint32_t(xt[c[2]]) & keep[2]) << 16 | (uint32_t(xt[c[3]]) & keep[3]) << 24;
      xv[t] = _mm256_set1_epi32(int32_t(v));
    }
    for (int h = 0; h < 2; h++)
      for (int e = 0; e < 2; e++) {
        const __m256i a = channel_part<K>(ch0 + c[0] * chan, h, e), b = channel_part<K>(ch0 + c[1] * chan, h, e);
        const __m256i cc = channel_part<K>(ch0 + c[2] * chan, h, e), d = channel_part<K>(ch0 + c[3] * chan, h, e);
        const __m256i ab_lo = _mm256_unpacklo_epi8(a, b), ab_hi = _mm256_unpackhi_epi8(a, b);
        const __m256i cd_lo = _mm256_unpacklo_epi8(cc, d), cd_hi = _mm256_unpackhi_epi8(cc, d);
        __m256i r[4];
        r[0] = _mm256_unpacklo_epi16(ab_lo, cd_lo);
        r[1] = _mm256_unpackhi_epi16(ab_lo, cd_lo);
        r[2] = _mm256_unpacklo_epi16(ab_hi, cd_hi);
        r[3] = _mm256_unpackhi_epi16(ab_hi, cd_hi);
        for (int j = 0; j < 4; j++) {
          const int q = 8 * h + 2 * j + e;
          for (int t = 0; t < T; t++) {
            const __m256i p = K == kByte || K == kIQ4 ? _mm256_maddubs_epi16(_mm256_sign_epi8(r[j], r[j]), _mm256_sign_epi8(xv[t], r[j]))
                                         : _mm256_maddubs_epi16(r[j], xv[t]);
            s[t][q] = _mm256_add_epi32(s[t][q], _mm256_madd_epi16(p, ones));
          }
        }
      }
  }
}

template <int T>
inline uint32_t active32(const uint8_t* qs, int64_t xrow) {
  __m256i any = _mm256_setzero_si256();
  for (int t = 0; t < T; t++) any = _mm256_or_si256(any, load(qs + t * xrow));
  return ~uint32_t(_mm256_movemask_epi8(_mm256_cmpeq_epi8(any, _mm256_setzero_si256())));
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
inline void store_rows(const __m256 acc[T][16], float* y, int64_t ldy, int64_t rows_left) {
  for (int q = 0; q < 16; q++) {
    const int64_t left = rows_left - 8 * q;
    if (left <= 0) break;
    for (int t = 0; t < T; t++) {
      if (left >= 8) {
        _mm256_storeu_ps(y + t * ldy + 8 * q, acc[t][q]);
      } else {
        const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        _mm256_maskstore_ps(y + t * ldy + 8 * q, m, acc[t][q]);
      }
    }
  }
}

// 2^(e-128) for 8 E8M0 bytes (exact; e = 0, 1 give subnormals), as the dense kernels.
inline __m256 e8m0_half_x8(const uint8_t* p) {
  const __m256i e = _mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p)));
  const __m256i normal = _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(1)), 23);
  const __m256i sub = _mm256_sllv_epi32(_mm256_set1_epi32(0x00200000), e);
  return _mm256_castsi256_ps(_mm256_blendv_epi8(normal, sub, _mm256_cmpgt_epi32(_mm256_set1_epi32(2), e)));
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
  // taken out of the integer sum with the block's sum of x (Q8_0 and IQ4_NL are multiplied
  // signed; Q4_1/Q5_1 have a float there)
  static constexpr int32_t kOff = V == vQ4_0 ? 8 : V == vQ5_0 ? 16 : V == vMx ? 12 : 0;
};

// BlockQ8A activations (d at 0, sum (or Q8A1's float s) at 4, qs at 8; 40 bytes). Per block
// and 8 rows the dense kernels' float step: Q4_1/Q5_1 acc + fma(float(s) * d, dx, m * s),
// the others fma(float(s - off * sx) * d, dx, acc).
template <int T, int V>
struct Tile32 {
  static uint64_t run(const uint8_t* wg, const uint8_t* next, int64_t nb, const uint8_t* x, int64_t xrow, float* y,
                      int64_t ldy, int64_t rows_left) {
    using L = Var32<V>;
    __m256 acc[T][16];
    for (int t = 0; t < T; t++)
      for (int q = 0; q < 16; q++) acc[t][q] = _mm256_setzero_ps();
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
      __m256i s[T][16];
      for (int t = 0; t < T; t++)
        for (int q = 0; q < 16; q++) s[t][q] = _mm256_setzero_si256();
      channels<T, L::kKind>(blk + L::kHead, L::kChan, xs, xrow, active, s);
      for (int q = 0; q < 16; q++) {
        const __m256 dw = V == vMx ? e8m0_half_x8(blk + 8 * q) : load_f16x8(blk + 16 * q);
        for (int t = 0; t < T; t++) {
          const uint8_t* xb = x + t * xrow + b * 40;
          if (L::kMin) {
            const __m256 mw = load_f16x8(blk + 256 + 16 * q);
            const __m256 dot = _mm256_mul_ps(_mm256_cvtepi32_ps(s[t][q]), dw);
            acc[t][q] = _mm256_add_ps(acc[t][q], _mm256_fmadd_ps(dot, _mm256_set1_ps(ldf(xb)),
                                                                 _mm256_mul_ps(mw, _mm256_set1_ps(ldf(xb + 4)))));
          } else {
            const __m256i si = L::kOff ? _mm256_sub_epi32(s[t][q], _mm256_set1_epi32(L::kOff * ld32(xb + 4))) : s[t][q];
            acc[t][q] = _mm256_fmadd_ps(_mm256_mul_ps(_mm256_cvtepi32_ps(si), dw), _mm256_set1_ps(ldf(xb)), acc[t][q]);
          }
        }
      }
    }
    store_rows<T>(acc, y, ldy, rows_left);
    return bytes;
  }
};

// Q4_K / Q6_K: BlockQ8KA activations (d at 0, bsums at 4, bsums32 at 36, qs at 52; 308 bytes).
template <int T, int Ty>
struct TileK {
  static uint64_t run(const uint8_t* wg, const uint8_t* next, int64_t nb, const uint8_t* x, int64_t xrow, float* y,
                      int64_t ldy, int64_t rows_left) {
    constexpr bool Q6 = Ty == 6, Q5 = Ty == 5;
    constexpr int kChan = Q6 ? sparrow::kSparseQ6_KChannel : Q5 ? sparrow::kSparseQ5_KChannel : 64;
    constexpr int kHead = Q6 ? sparrow::kSparseQ6_KHead : sparrow::kSparseQ4_KHead;
    constexpr int kBlock = Q6 ? sparrow::kSparseQ6_KBlock : Q5 ? sparrow::kSparseQ5_KBlock : sparrow::kSparseQ4_KBlock;
    constexpr int kSub = Q6 ? 16 : 8, kCols = 256 / kSub;
    __m256 acc[T][16];
    for (int t = 0; t < T; t++)
      for (int q = 0; q < 16; q++) acc[t][q] = _mm256_setzero_ps();
    uint64_t bytes = 0;
    for (int64_t b = 0; b < nb; b++) {
      const uint8_t* blk = wg + b * kBlock;
      const uint8_t* xb = x + b * 308;
      uint32_t active[8];
      int n_active = 0;
      for (int j = 0; j < 8; j++) n_active += __builtin_popcount(active[j] = active32<T>(xb + 52 + 32 * j, xrow));
      bytes += kHead + uint64_t(n_active) * kChan;
      __m256i isum[T][16], csum[T][16];
      for (int t = 0; t < T; t++)
        for (int q = 0; q < 16; q++) isum[t][q] = csum[t][q] = _mm256_setzero_si256();
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
        const uint8_t* sc = blk + (Q6 ? 256 : 512) + 128 * sb;
        for (int q = 0; q < 16; q++) {
          const __m256i f = Q6 ? bytes8_s(sc + 8 * q) : bytes8_u(blk + 1536 + 128 * sb + 8 * q);
          for (int t = 0; t < T; t++)
            csum[t][q] = _mm256_add_epi32(
                csum[t][q], _mm256_mullo_epi32(f, _mm256_set1_epi32(ld16(xb + t * xrow + (Q6 ? 4 : 36) + 2 * sb))));
        }
        const uint32_t m = Q6 ? (active[sb >> 1] >> (16 * (sb & 1))) & 0xffffu : active[sb];
        if (!m) continue;
        __m256i s[T][16];
        for (int t = 0; t < T; t++)
          for (int q = 0; q < 16; q++) s[t][q] = _mm256_setzero_si256();
        channels<T, Q6 ? kSix : Q5 ? kFive : kNib>(blk + kHead + kChan * kCols * sb, kChan, xb + 52 + kCols * sb, xrow, m, s);
        for (int q = 0; q < 16; q++) {
          const __m256i f = Q6 ? bytes8_s(sc + 8 * q) : bytes8_u(sc + 8 * q);
          for (int t = 0; t < T; t++) isum[t][q] = _mm256_add_epi32(isum[t][q], _mm256_mullo_epi32(s[t][q], f));
        }
      }
      for (int q = 0; q < 16; q++) {
        const __m256 d = load_f16x8(blk + 16 * q);
        for (int t = 0; t < T; t++) {
          const __m256 dx = _mm256_set1_ps(ldf(xb + t * xrow));
          if (Q6) {
            const __m256i v = _mm256_sub_epi32(isum[t][q], _mm256_slli_epi32(csum[t][q], 5));
            acc[t][q] = _mm256_fmadd_ps(dx, _mm256_mul_ps(d, _mm256_cvtepi32_ps(v)), acc[t][q]);
          } else {
            const __m256 dmin = load_f16x8(blk + 256 + 16 * q);
            const __m256 v = _mm256_sub_ps(_mm256_mul_ps(d, _mm256_cvtepi32_ps(isum[t][q])),
                                           _mm256_mul_ps(dmin, _mm256_cvtepi32_ps(csum[t][q])));
            acc[t][q] = _mm256_fmadd_ps(dx, v, acc[t][q]);
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

SP_SPARSE_ENTRIES(avx2)
