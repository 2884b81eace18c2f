// Helpers shared by the generic kernel files of this folder (and only by them: they are
// compiled with the same flags). Internal linkage, so no other translation unit can pick
// up these copies.
#pragma once
#include <cstdint>
#include <cstring>

#include "kernels/layout.h"
#include "quant/fp16.h"

namespace {

inline float f16(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return sparrow::fp16_to_fp32(h);
}
inline float f32(const uint8_t* p) {
  float v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int32_t i32(const uint8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline int16_t i16(const uint8_t* p) {
  int16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// The shared outer loops: for each group and token, `block(acc, wblock, xblock)` adds the
// contribution of one (group block, activation block) pair to the 16 row sums.
template <typename BlockFn>
void run(const uint8_t* w, int64_t nb, int64_t group_block, const void* xq, int64_t x_block, int64_t n,
         float* y, int64_t ldy, int64_t g0, int64_t g1, int64_t rlimit, BlockFn block) {
  const uint8_t* x = static_cast<const uint8_t*>(xq);
  for (int64_t g = g0; g < g1; g++) {
    const uint8_t* wg = w + g * nb * group_block;
    for (int64_t t = 0; t < n; t++) {
      const uint8_t* xt = x + t * nb * x_block;
      float acc[sparrow::kGroupRows] = {0};
      for (int64_t b = 0; b < nb; b++) block(acc, wg + b * group_block, xt + b * x_block);
      for (int r = 0; r < sparrow::kGroupRows && g * sparrow::kGroupRows + r < rlimit; r++) y[t * ldy + g * sparrow::kGroupRows + r] = acc[r];
    }
  }
}

}  // namespace
