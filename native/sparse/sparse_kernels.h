// The sparse (input-skipping) matmul kernels over the channel-major layouts of
// sparse/layout.h, one table per ISA, as kernels/kernels.h does for the dense ones.
// The generic kernels are the plain reference twins; AVX2, AVX-512 and NEON have fast ones
// for every type with a channel-major layout.
//
// For the 128-row groups [g0, g1): y[t*ldy + r] = sum_c W[r][c] * x_t[c] for t < n and
// 128*g0 <= r < min(128*g1, rlimit); n <= kSparseMaxTokens. xq holds n tokens of BlockQ8A
// rows (Q8A1 for Q4_1/Q5_1, BlockQ8KA rows for the K-quants). Input channels whose quantized activation is 0
// in all n tokens are not read.
// The AVX2, AVX-512 and NEON kernels prefetch the active channel vectors (and scales) a few
// blocks ahead, also into the next group of the call (skips defeat the stream prefetcher).
// Returns the weight bytes read (scales of every block, plus the channel vectors of the
// channels read).
#pragma once
#include <cstddef>
#include <cstdint>

#define SP_SMM_ARGS const uint8_t *w, int64_t cols, const void *xq, int64_t n, float *y, int64_t ldy, \
                    int64_t g0, int64_t g1, int64_t rlimit

#define SP_DECLARE_SPARSE_ISA(isa)            \
  uint64_t sp_smm_q4_0_##isa(SP_SMM_ARGS);    \
  uint64_t sp_smm_q8_0_##isa(SP_SMM_ARGS);    \
  uint64_t sp_smm_q4_k_##isa(SP_SMM_ARGS);    \
  uint64_t sp_smm_q5_k_##isa(SP_SMM_ARGS);    \
  uint64_t sp_smm_q6_k_##isa(SP_SMM_ARGS);    \
  uint64_t sp_smm_q4_1_##isa(SP_SMM_ARGS);    \
  uint64_t sp_smm_q5_0_##isa(SP_SMM_ARGS);    \
  uint64_t sp_smm_q5_1_##isa(SP_SMM_ARGS);    \
  uint64_t sp_smm_iq4_nl_##isa(SP_SMM_ARGS);  \
  uint64_t sp_smm_mxfp4_##isa(SP_SMM_ARGS);

extern "C" {
SP_DECLARE_SPARSE_ISA(generic)
SP_DECLARE_SPARSE_ISA(avx2)
SP_DECLARE_SPARSE_ISA(avx512)
SP_DECLARE_SPARSE_ISA(neon)
}

#ifndef SPARROW_KERNEL_TU
#include "kernels/isa.h"

namespace sparrow {

using SparseMatMulFn = uint64_t (*)(SP_SMM_ARGS);

struct SparseKernels {
  // nullptr where the ISA has no sparse kernel of that type: the SparseMatrix then
  // computes through the dense kernel of the ISA (same bits, no bytes saved).
  SparseMatMulFn smm_q4_0, smm_q8_0, smm_q4_k, smm_q6_k, smm_q5_k;
  SparseMatMulFn smm_q4_1, smm_q5_0, smm_q5_1, smm_iq4_nl, smm_mxfp4;
};

const SparseKernels& sparse_kernels_for(Isa isa);

}  // namespace sparrow
#endif
