// AVX-512 activation quantizers: the same values as quant/quant.cpp's reference
// (products rounded to nearest even by the conversion, as lrintf does in the default
// rounding mode; the Q8_0 scale rounded to fp16 by F16C, as the software conversion
// does). extern "C" entry points only; helpers have internal linkage.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"
#include "kernels/layout.h"

namespace {

// 16 floats times s, rounded to nearest even, clamped to [-127, 127], as int32 lanes.
inline __m512i quant16(__m512 v, __m512 s) {
  __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(v, s));
  return _mm512_min_epi32(_mm512_max_epi32(q, _mm512_set1_epi32(-127)), _mm512_set1_epi32(127));
}

inline float round_fp16(float f) { return _cvtsh_ss(_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT)); }

}  // namespace

extern "C" void sp_quantize_q8a_avx512(const float* x, void* y, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(y);
  for (int64_t b = 0; b < n / 32; b++, x += 32, out += sparrow::kQ8ABytes) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v0), _mm512_abs_ps(v1)));
    const __m512 id = _mm512_set1_ps(amax > 0 ? 127 / amax : 0);
    const __m512i q0 = quant16(v0, id), q1 = quant16(v1, id);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 8), _mm512_cvtepi32_epi8(q0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + 24), _mm512_cvtepi32_epi8(q1));
    const float d = round_fp16(amax / 127);
    const int32_t sum = _mm512_reduce_add_epi32(_mm512_add_epi32(q0, q1));
    __builtin_memcpy(out, &d, 4);
    __builtin_memcpy(out + 4, &sum, 4);
  }
}

extern "C" void sp_quantize_q8ka_avx512(const float* x, void* y, int64_t n) {
  uint8_t* out = static_cast<uint8_t*>(y);
  for (int64_t b = 0; b < n / 256; b++, x += 256, out += sparrow::kQ8KABytes) {
    __m512 m = _mm512_setzero_ps();
    for (int k = 0; k < 16; k++) m = _mm512_max_ps(m, _mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)));
    const float amax = _mm512_reduce_max_ps(m);
    // The element of largest magnitude, the first one on ties, sign kept.
    float mx = 0;
    for (int k = 0; k < 16; k++) {
      const __mmask16 hit = _mm512_cmp_ps_mask(_mm512_abs_ps(_mm512_loadu_ps(x + 16 * k)), _mm512_set1_ps(amax), _CMP_EQ_OQ);
      if (hit) {
        mx = x[16 * k + __builtin_ctz(hit)];
        break;
      }
    }
    const float iscale = amax > 0 ? -127.0f / mx : 0.0f;
    const __m512 s = _mm512_set1_ps(iscale);
    int16_t bsums[16];
    for (int k = 0; k < 16; k++) {
      const __m512i q = quant16(_mm512_loadu_ps(x + 16 * k), s);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(out + sparrow::kQ8KAQs + 16 * k), _mm512_cvtepi32_epi8(q));
      bsums[k] = int16_t(_mm512_reduce_add_epi32(q));
    }
    int16_t bsums32[8];
    for (int k = 0; k < 8; k++) bsums32[k] = int16_t(bsums[2 * k] + bsums[2 * k + 1]);
    const float d = amax > 0 ? 1.0f / iscale : 0.0f;
    __builtin_memcpy(out, &d, 4);
    __builtin_memcpy(out + sparrow::kQ8KABsums, bsums, sizeof bsums);
    __builtin_memcpy(out + sparrow::kQ8KABsums32, bsums32, sizeof bsums32);
  }
}
