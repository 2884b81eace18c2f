// AVX2 + F16C attention kernel (kernels.h, sp_pv_f16): probabilities times f16 values.
// Each output value is one chain of fused multiply-adds over the positions in increasing
// order, whatever the number of rows: rows are only blocked by four so that one load and
// conversion of the values serves four rows. extern "C" entry points only.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"

extern "C" void sp_pv_f16_avx2(const float* w, int64_t ldw, const uint16_t* v, int64_t ldv, int64_t np, float* out,
                               int64_t ldo, int64_t rows, int64_t hd) {
  const int64_t main = hd / 8 * 8;
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* w0 = w + r * ldw;
    float* y0 = out + r * ldo;
    for (int64_t i = 0; i < main; i += 8) {
      __m256 a0 = _mm256_loadu_ps(y0 + i), a1 = _mm256_loadu_ps(y0 + ldo + i);
      __m256 a2 = _mm256_loadu_ps(y0 + 2 * ldo + i), a3 = _mm256_loadu_ps(y0 + 3 * ldo + i);
      for (int64_t p = 0; p < np; p++) {
        const __m256 x = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + p * ldv + i)));
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(w0[p]), x, a0);
        a1 = _mm256_fmadd_ps(_mm256_set1_ps(w0[ldw + p]), x, a1);
        a2 = _mm256_fmadd_ps(_mm256_set1_ps(w0[2 * ldw + p]), x, a2);
        a3 = _mm256_fmadd_ps(_mm256_set1_ps(w0[3 * ldw + p]), x, a3);
      }
      _mm256_storeu_ps(y0 + i, a0);
      _mm256_storeu_ps(y0 + ldo + i, a1);
      _mm256_storeu_ps(y0 + 2 * ldo + i, a2);
      _mm256_storeu_ps(y0 + 3 * ldo + i, a3);
    }
  }
  for (; r < rows; r++) {
    const float* w0 = w + r * ldw;
    float* y0 = out + r * ldo;
    for (int64_t i = 0; i < main; i += 8) {
      __m256 a0 = _mm256_loadu_ps(y0 + i);
      for (int64_t p = 0; p < np; p++)
        a0 = _mm256_fmadd_ps(_mm256_set1_ps(w0[p]), _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v + p * ldv + i))), a0);
      _mm256_storeu_ps(y0 + i, a0);
    }
  }
  // The last hd % 8 values of every row: the same fused chain, one value at a time.
  for (r = 0; r < rows; r++)
    for (int64_t i = main; i < hd; i++) {
      float a = out[r * ldo + i];
      for (int64_t p = 0; p < np; p++) a = __builtin_fmaf(w[r * ldw + p], _cvtsh_ss(v[p * ldv + i]), a);
      out[r * ldo + i] = a;
    }
}
