// AVX2 helpers shared by the AVX2 kernel files of this folder (and only by them: they are
// compiled with the same flags). Internal linkage, so no other translation unit can pick
// up these copies.
#pragma once
#include <immintrin.h>
#include <stdint.h>

namespace {

inline int32_t ld32(const uint8_t* p) {
  int32_t v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline float ldf(const uint8_t* p) {
  float v;
  __builtin_memcpy(&v, p, 4);
  return v;
}
inline __m256i bcast(const uint8_t* p) { return _mm256_set1_epi32(ld32(p)); }
inline __m256i load(const uint8_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline __m256 load_f16x8(const uint8_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }
inline __m256i mask_rows(int64_t left) {  // lanes r < left
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(int32_t(left)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

}  // namespace
