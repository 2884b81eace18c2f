// The kernel table: every SIMD entry point, one table per ISA. Code outside kernels/
// calls kernels() (the current path) or kernels_for(isa) (tests), never an ISA
// function directly. Each ISA function is declared extern "C" with a suffix naming its
// ISA, and defined in kernels/<isa>/; the generic ones are the reference twins.
#pragma once
#include <cstddef>
#include <cstdint>

#include "isa.h"

extern "C" {
// sum_i a[i] * b[i]
float sp_dot_f32_generic(const float* a, const float* b, int64_t n);
float sp_dot_f32_avx2(const float* a, const float* b, int64_t n);
float sp_dot_f32_avx512(const float* a, const float* b, int64_t n);
float sp_dot_f32_neon(const float* a, const float* b, int64_t n);
}

namespace sparrow {

struct Kernels {
  Isa isa;
  float (*dot_f32)(const float* a, const float* b, int64_t n);
};

const Kernels& kernels_for(Isa isa);  // falls back to generic when not compiled
inline const Kernels& kernels() { return kernels_for(current_isa()); }

}  // namespace sparrow
