// Reference twin of the attention kernel (kernels.h, sp_pv_f16): probabilities times
// f16 values, each output value summed over the positions in increasing order.
#include <cstdint>

#include "quant/fp16.h"

extern "C" void sp_pv_f16_generic(const float* w, int64_t ldw, const uint16_t* v, int64_t ldv, int64_t np, float* out,
                                  int64_t ldo, int64_t rows, int64_t hd) {
  for (int64_t r = 0; r < rows; r++) {
    float* y = out + r * ldo;
    for (int64_t p = 0; p < np; p++) {
      const float a = w[r * ldw + p];
      const uint16_t* x = v + p * ldv;
      for (int64_t i = 0; i < hd; i++) y[i] += a * sparrow::fp16_to_fp32(x[i]);
    }
  }
}
