// AVX-512 attention kernel (kernels.h, sp_pv_f16): probabilities times f16 values. Each
// output value is one chain of fused multiply-adds over the positions in increasing
// order, whatever the number of rows (rows are blocked by four so that one load and
// conversion of the values serves four rows); a partial last vector is masked.
// extern "C" entry points only.
#include <immintrin.h>
#include <stdint.h>

#define SPARROW_KERNEL_TU  // kernels.h: the extern "C" declarations only
#include "kernels/kernels.h"

extern "C" void sp_pv_f16_avx512(const float* w, int64_t ldw, const uint16_t* v, int64_t ldv, int64_t np, float* out,
                                 int64_t ldo, int64_t rows, int64_t hd) {
  int64_t r = 0;
  for (; r + 4 <= rows; r += 4) {
    const float* w0 = w + r * ldw;
    float* y0 = out + r * ldo;
    for (int64_t i = 0; i < hd; i += 16) {
      const __mmask16 m = hd - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (hd - i)) - 1);
      __m512 a0 = _mm512_maskz_loadu_ps(m, y0 + i), a1 = _mm512_maskz_loadu_ps(m, y0 + ldo + i);
      __m512 a2 = _mm512_maskz_loadu_ps(m, y0 + 2 * ldo + i), a3 = _mm512_maskz_loadu_ps(m, y0 + 3 * ldo + i);
      for (int64_t p = 0; p < np; p++) {
        const __m512 x = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, v + p * ldv + i));
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(w0[p]), x, a0);
        a1 = _mm512_fmadd_ps(_mm512_set1_ps(w0[ldw + p]), x, a1);
        a2 = _mm512_fmadd_ps(_mm512_set1_ps(w0[2 * ldw + p]), x, a2);
        a3 = _mm512_fmadd_ps(_mm512_set1_ps(w0[3 * ldw + p]), x, a3);
      }
      _mm512_mask_storeu_ps(y0 + i, m, a0);
      _mm512_mask_storeu_ps(y0 + ldo + i, m, a1);
      _mm512_mask_storeu_ps(y0 + 2 * ldo + i, m, a2);
      _mm512_mask_storeu_ps(y0 + 3 * ldo + i, m, a3);
    }
  }
  for (; r < rows; r++) {
    const float* w0 = w + r * ldw;
    float* y0 = out + r * ldo;
    for (int64_t i = 0; i < hd; i += 16) {
      const __mmask16 m = hd - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (hd - i)) - 1);
      __m512 a0 = _mm512_maskz_loadu_ps(m, y0 + i);
      for (int64_t p = 0; p < np; p++)
        a0 = _mm512_fmadd_ps(_mm512_set1_ps(w0[p]), _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, v + p * ldv + i)), a0);
      _mm512_mask_storeu_ps(y0 + i, m, a0);
    }
  }
}
