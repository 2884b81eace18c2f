// Helpers shared by the generic kernel files of this folder (and only by them: they are
// compiled with the same flags). Internal linkage, so no other translation unit can pick
// up these copies.
#pragma once
#include <cstdint>
#include <cstring>

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

}  // namespace
