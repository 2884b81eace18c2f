// F16C conversions between f32 and f16 (round to nearest even), 8 at a time; the tail
// goes through a zero-padded stack buffer of one vector (the same function called on it).
// extern "C" entry points only.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"

extern "C" void sp_f32_to_f16_avx2(const float* x, uint16_t* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(y + i), _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT));
  if (i < n) {
    float in[8] = {0};
    uint16_t out[8];
    __builtin_memcpy(in, x + i, sizeof(float) * size_t(n - i));
    sp_f32_to_f16_avx2(in, out, 8);
    __builtin_memcpy(y + i, out, sizeof(uint16_t) * size_t(n - i));
  }
}

extern "C" void sp_f16_to_f32_avx2(const uint16_t* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(x + i))));
  if (i < n) {
    uint16_t in[8] = {0};
    float out[8];
    __builtin_memcpy(in, x + i, sizeof(uint16_t) * size_t(n - i));
    sp_f16_to_f32_avx2(in, out, 8);
    __builtin_memcpy(y + i, out, sizeof(float) * size_t(n - i));
  }
}

extern "C" void sp_round_f16_avx2(const float* x, float* y, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(y + i, _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT)));
  if (i < n) {
    float in[8] = {0}, out[8];
    __builtin_memcpy(in, x + i, sizeof(float) * size_t(n - i));
    sp_round_f16_avx2(in, out, 8);
    __builtin_memcpy(y + i, out, sizeof(float) * size_t(n - i));
  }
}
