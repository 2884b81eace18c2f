// SparseMatrix: a weight matrix stored channel-major (sparse/layout.h) so that decoding
// skips the weight bytes of input channels whose activations are zero.
//
// It is a Matrix like any other (kernels/matmul.h): the same input format (BlockQ8A, or
// BlockQ8KA for the K-quants, Q8A1 for Q4_1/Q5_1) and
// the same results, bit for bit, as the dense matrix of the same tensor on the same ISA.
//   n <= kSparseMaxTokens (decode steps, batched or not): the sparse kernel of the current
//     ISA reads only the channels that are nonzero in some token.
//   n > kSparseMaxTokens (prompts), or an ISA without a sparse kernel: each 128-row group is
//     repacked on the fly into the dense layout (kernels/layout.h) in a per-thread scratch
//     buffer and the dense kernel runs on it. Only the channel-major copy of the weights
//     is kept.
// Weight bytes read are added to a SparseStats shared by the matrices of a model.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>

#include "kernels/matmul.h"

namespace sparrow {

struct SparseStats {
  std::atomic<uint64_t> read{0};   // weight bytes the kernels read
  std::atomic<uint64_t> dense{0};  // bytes a dense pass over the same calls reads
  void reset() { read = 0, dense = 0; }
};

// Whether the type has a channel-major layout (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, IQ4_NL, MXFP4,
// Q4_K, Q5_K, Q6_K so far).
bool sparse_supported(uint32_t type);
// The names of the supported types, for messages.
const char* sparse_supported_names();

// Makes the SparseMatrix of raw data (as make_matrix; `data` may go once this returns).
// Throws ERR_UNSUPPORTED_TYPE for a type without a sparse layout, ERR_BAD_TENSOR_SHAPE for
// a bad shape. `stats` may be null.
std::unique_ptr<Matrix> make_sparse_matrix(uint32_t type, const void* data, int64_t rows, int64_t cols,
                                           const char* name, std::shared_ptr<SparseStats> stats,
                                           const ParallelFor& par = {});

}  // namespace sparrow
