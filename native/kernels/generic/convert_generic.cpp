// Reference twins of the f16 conversions: quant/fp16.h's exact scalar code.
#include <cstdint>

#include "quant/fp16.h"

extern "C" void sp_f32_to_f16_generic(const float* x, uint16_t* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = sparrow::fp32_to_fp16(x[i]);
}

extern "C" void sp_f16_to_f32_generic(const uint16_t* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = sparrow::fp16_to_fp32(x[i]);
}

extern "C" void sp_round_f16_generic(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; i++) y[i] = sparrow::fp16_to_fp32(sparrow::fp32_to_fp16(x[i]));
}
