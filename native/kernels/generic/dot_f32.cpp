// Reference twin: plain C++, compiled with baseline flags.
#include <cstdint>

extern "C" float sp_dot_f32_generic(const float* a, const float* b, int64_t n) {
  double sum = 0;  // double accumulation: the reference is the accurate one
  for (int64_t i = 0; i < n; i++) sum += double(a[i]) * double(b[i]);
  return float(sum);
}
