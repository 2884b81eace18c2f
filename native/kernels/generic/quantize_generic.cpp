// Reference twins of the activation quantizers: the plain C++ of quant/quant.cpp.
#include <cstdint>

#include "quant/quant.h"

extern "C" void sp_quantize_q8a_generic(const float* x, void* y, int64_t n) {
  sparrow::quantize_row_q8a(x, static_cast<sparrow::BlockQ8A*>(y), n);
}

extern "C" void sp_quantize_q8ka_generic(const float* x, void* y, int64_t n) {
  sparrow::quantize_row_q8ka(x, static_cast<sparrow::BlockQ8KA*>(y), n);
}
