// The kernel table: every SIMD entry point, one table per ISA. Code outside kernels/
// calls kernels() (the current path) or kernels_for(isa) (tests), never an ISA
// function directly. Each ISA function is declared extern "C" with a suffix naming its
// ISA, and defined in kernels/<isa>/; the generic ones are the reference twins (same
// inputs, same integer arithmetic, plain C++). An ISA that lacks a kernel gets the
// generic twin in its table.
#pragma once
#include <cstddef>
#include <cstdint>

#include "isa.h"

// Quantized matmul over repacked weights (kernels/layout.h), for the 16-row groups
// [g0, g1): y[t*ldy + r] = sum_c W[r][c] * x_t[c] for t < n and 16*g0 <= r < min(16*g1, rlimit).
// xq holds n tokens of quantized activations, one after the other (BlockQ8A rows for
// the 32-column types, BlockQ8KA rows for the 256-column ones).
#define SP_QMM_ARGS const uint8_t *w, int64_t cols, const void *xq, int64_t n, float *y, int64_t ldy, \
                    int64_t g0, int64_t g1, int64_t rlimit
// Float-weight matmul, weights row-major as in the file (F32, F16 or BF16), rows [r0, r1):
// y[t*ldy + r] = sum_c W[r][c] * x[t*cols + c].
#define SP_FMM_ARGS const void *w, int64_t cols, const float *x, int64_t n, float *y, int64_t ldy, \
                    int64_t r0, int64_t r1

#define SP_DECLARE_ISA(isa)                                                         \
  float sp_dot_f32_##isa(const float* a, const float* b, int64_t n);                \
  void sp_mm_q4_0_##isa(SP_QMM_ARGS);                                               \
  void sp_mm_q8_0_##isa(SP_QMM_ARGS);                                               \
  void sp_mm_q4_k_##isa(SP_QMM_ARGS);                                               \
  void sp_mm_q5_k_##isa(SP_QMM_ARGS);                                               \
  void sp_mm_q6_k_##isa(SP_QMM_ARGS);                                               \
  void sp_mm_f32_##isa(SP_FMM_ARGS);                                                \
  void sp_mm_f16_##isa(SP_FMM_ARGS);                                                \
  void sp_mm_bf16_##isa(SP_FMM_ARGS);                                               \
  float sp_dot_f16_f32_##isa(const uint16_t* a, const float* b, int64_t n);         \
  void sp_axpy_f16_##isa(float a, const uint16_t* x, float* y, int64_t n);        \
  void sp_quantize_q8a_##isa(const float* x, void* y, int64_t n);                 \
  void sp_quantize_q8ka_##isa(const float* x, void* y, int64_t n);                \
  void sp_f32_to_f16_##isa(const float* x, uint16_t* y, int64_t n);               \
  void sp_f16_to_f32_##isa(const uint16_t* x, float* y, int64_t n);               \
  void sp_round_f16_##isa(const float* x, float* y, int64_t n);                   \
  void sp_pv_f16_##isa(const float* w, int64_t ldw, const uint16_t* v, int64_t ldv, int64_t np, \
                       float* out, int64_t ldo, int64_t rows, int64_t hd);                \
  void sp_mm_q4_1_##isa(SP_QMM_ARGS);                                               \
  void sp_mm_q5_0_##isa(SP_QMM_ARGS);                                               \
  void sp_mm_q5_1_##isa(SP_QMM_ARGS);                                               \
  void sp_mm_iq4_nl_##isa(SP_QMM_ARGS);                                             \
  void sp_mm_mxfp4_##isa(SP_QMM_ARGS);                                              \
  void sp_mm_iq4_xs_##isa(SP_QMM_ARGS);                                             \
  void sp_mm_q2_k_##isa(SP_QMM_ARGS);                                               \
  void sp_mm_q3_k_##isa(SP_QMM_ARGS);

extern "C" {
SP_DECLARE_ISA(generic)
SP_DECLARE_ISA(avx2)
SP_DECLARE_ISA(avx512)
SP_DECLARE_ISA(neon)
}

// Per-ISA files (kernels/<isa>/) define SPARROW_KERNEL_TU: they see the declarations
// above and none of the C++ below (no inline code compiled with ISA flags).
#ifndef SPARROW_KERNEL_TU
namespace sparrow {

using QMatMulFn = void (*)(SP_QMM_ARGS);
using FMatMulFn = void (*)(SP_FMM_ARGS);

struct Kernels {
  Isa isa;
  // sum_i a[i] * b[i]
  float (*dot_f32)(const float* a, const float* b, int64_t n);
  QMatMulFn mm_q4_0, mm_q8_0, mm_q4_k, mm_q5_k, mm_q6_k;
  FMatMulFn mm_f32, mm_f16, mm_bf16;
  // For attention over an F16 KV cache: sum_i f16(a[i]) * b[i], and y[i] += a * f16(x[i]).
  float (*dot_f16_f32)(const uint16_t* a, const float* b, int64_t n);
  void (*axpy_f16)(float a, const uint16_t* x, float* y, int64_t n);
  // Activations for the integer matmuls: n floats (a multiple of the block) to BlockQ8A
  // (32 values) or BlockQ8KA (256 values) blocks, exactly as quant/quant.cpp's reference.
  void (*quantize_q8a)(const float* x, void* y, int64_t n);
  void (*quantize_q8ka)(const float* x, void* y, int64_t n);
  // f32 <-> f16 (IEEE binary16, round to nearest even), and f32 rounded to the nearest
  // f16 value (y may be x): the KV cache, and the inputs of f16 products.
  void (*f32_to_f16)(const float* x, uint16_t* y, int64_t n);
  void (*f16_to_f32)(const uint16_t* x, float* y, int64_t n);
  void (*round_f16)(const float* x, float* y, int64_t n);
  // Attention's probabilities times values, for an F16 cache: for r < rows, i < hd,
  // out[r*ldo + i] += sum over p < np of w[r*ldw + p] * f16(v[p*ldv + i]), each value
  // summed over the positions in increasing order (one fused multiply-add per position
  // on the SIMD paths), the same whatever `rows`: attention's results must not depend on
  // how its rows are tiled.
  void (*pv_f16)(const float* w, int64_t ldw, const uint16_t* v, int64_t ldv, int64_t np, float* out, int64_t ldo,
                 int64_t rows, int64_t hd);
  // Weight types read later (layouts in kernels/layout.h).
  QMatMulFn mm_q4_1, mm_q5_0, mm_q5_1, mm_iq4_nl, mm_mxfp4, mm_iq4_xs, mm_q2_k, mm_q3_k;
};

const Kernels& kernels_for(Isa isa);  // falls back to generic when not compiled
inline const Kernels& kernels() { return kernels_for(current_isa()); }

}  // namespace sparrow
#endif  // SPARROW_KERNEL_TU
