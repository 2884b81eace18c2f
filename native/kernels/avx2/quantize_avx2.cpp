// AVX2 activation quantizers: the same values as quant/quant.cpp's reference
// (products rounded to nearest even by the conversion, as lrintf does in the default
// rounding mode; the Q8_0 scale rounded to fp16 by F16C, as the software conversion
// does). extern "C" entry points only; helpers have internal linkage.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"
#include "kernels/layout.h"

namespace {

inline __m256 abs8(__m256 v) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v); }

inline float hmax8(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_movehdup_ps(m));
  return _mm_cvtss_f32(m);
}

inline int32_t hsum8(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1));
  return _mm_cvtsi128_si32(s);
}

// 8 floats times s, rounded to nearest even, clamped to [-127, 127], as int32 lanes.
inline __m256i quant8(__m256 v, __m256 s) {
  __m256i q = _mm256_cvtps_epi32(_mm256_mul_ps(v, s));
  return _mm256_min_epi32(_mm256_max_epi32(q, _mm256_set1_epi32(-127)), _mm256_set1_epi32(127));
}

// 32 int32 lanes (in [-127, 127]) to 32 bytes in order.
inline void store32(uint8_t* p, __m256i q0, __m256i q1, __m256i q2, __m256i q3) {
  // packs works within 128-bit halves; the permute puts the 4-byte groups back in order.
  __m256i b = _mm256_packs_epi16(_mm256_packs_epi32(q0, q1), _mm256_packs_epi32(q2, q3));
  b = _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), b);
}

inline float round_fp16(float f) { return _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

}  // namespace

extern "C" void sp_quantize_q8a_avx2(const float* x, void* y, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(y);
  for (int64_t b = 0; b < n / 32; b++, x += 32, out += sparrow::kQ8ABytes) {
    __m256 v[4];
    for (int k = 0; k < 4; k++) v[k] = _mm256_loadu_ps(x + 8 * k);
    const float amax = hmax8(_mm256_max_ps(_mm256_max_ps(abs8(v[0]), abs8(v[1])), _mm256_max_ps(abs8(v[2]), abs8(v[3]))));
    const __m256 id = _mm256_set1_ps(amax > 0 ? 127 / amax : 0);
    __m256i q[4];
    for (int k = 0; k < 4; k++) q[k] = quant8(v[k], id);
    store32(out + 8, q[0], q[1], q[2], q[3]);
    const float d = round_fp16(amax / 127);
    const int32_t sum = hsum8(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    __builtin_memcpy(out, &d, 4);
    __builtin_memcpy(out + 4, &sum, 4);
  }
}

extern "C" void sp_quantize_q8ka_avx2(const float* x, void* y, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(y);
  for (int64_t b = 0; b < n / 256; b++, x += 256, out += sparrow::kQ8KABytes) {
    __m256 m = _mm256_setzero_ps();
    for (int k = 0; k < 32; k++) m = _mm256_max_ps(m, abs8(_mm256_loadu_ps(x + 8 * k)));
    const float amax = hmax8(m);
    // The element of largest magnitude, the first one on ties, sign kept.
    float mx = 0;
    const __m256 am = _mm256_set1_ps(amax);
    for (int k = 0; k < 32; k++) {
      const int hit = _mm256_movemask_ps(_mm256_cmp_ps(abs8(_mm256_loadu_ps(x + 8 * k)), am, _CMP_EQ_OQ));
      if (hit) {
        mx = x[8 * k + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = amax > 0 ? -127.0f / mx : 0.0f;
    const __m256 s = _mm256_set1_ps(iscale);
    int16_t bsums[16];
    for (int k = 0; k < 8; k++) {  // 32 values at a time: two 16-value sums
      __m256i q[4];
      for (int j = 0; j < 4; j++) q[j] = quant8(_mm256_loadu_ps(x + 32 * k + 8 * j), s);
      store32(out + sparrow::kQ8KAQs + 32 * k, q[0], q[1], q[2], q[3]);
      bsums[2 * k] = int16_t(hsum8(_mm256_add_epi32(q[0], q[1])));
      bsums[2 * k + 1] = int16_t(hsum8(_mm256_add_epi32(q[2], q[3])));
    }
    int16_t bsums32[8];
    for (int k = 0; k < 8; k++) bsums32[k] = int16_t(bsums[2 * k] + bsums[2 * k + 1]);
    const float d = amax > 0 ? 1.0f / iscale : 0.0f;
    __builtin_memcpy(out, &d, 4);
    __builtin_memcpy(out + sparrow::kQ8KABsums, bsums, sizeof bsums);
    __builtin_memcpy(out + sparrow::kQ8KABsums32, bsums32, sizeof bsums32);
  }
}
