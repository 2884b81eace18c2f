// F16C conversions between f32 and f16 (round to nearest even), 8 at a time; the tail
// goes through a zero-padded stack buffer of one vector. extern "C" entry points only;
// helpers have internal linkage.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"

namespace {

// vec(in, out) converts 8 elements; the last partial vector is padded with zeros.
template <typename In, typename Out, typename Vec>
inline void convert8(const In* x, Out* y, int64_t n, Vec vec) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) vec(x + i, y + i);
  if (i < n) {
    In in[8] = {};
    Out out[8];
    __builtin_memcpy(in, x + i, sizeof(In) * size_t(n - i));
    vec(in, out);
    __builtin_memcpy(y + i, out, sizeof(Out) * size_t(n - i));
  }
}

inline __m128i to_f16(const float* x) { return _mm256_cvtps_ph(_mm256_loadu_ps(x), _MM_FROUND_TO_NEAREST_INT); }

}  // namespace

extern "C" void sp_f32_to_f16_avx2(const float* x, uint16_t* y, int64_t n) {
  convert8(x, y, n, [](const float* a, uint16_t* b) { _mm_storeu_si128(reinterpret_cast<__m128i*>(b), to_f16(a)); });
}

extern "C" void sp_f16_to_f32_avx2(const uint16_t* x, float* y, int64_t n) {
  convert8(x, y, n, [](const uint16_t* a, float* b) {
    _mm256_storeu_ps(b, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(a))));
  });
}

extern "C" void sp_round_f16_avx2(const float* x, float* y, int64_t n) {
  convert8(x, y, n, [](const float* a, float* b) { _mm256_storeu_ps(b, _mm256_cvtph_ps(to_f16(a))); });
}
