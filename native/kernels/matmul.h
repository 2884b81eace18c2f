// y = W x for a weight matrix of any supported type: the one entry point the forward
// pass uses for every projection. A Matrix is made once per weight tensor at load (it
// may repack the weights into an interleaved layout); at run time the caller
//   1. quantizes the input activations once:   m.quantize_input(x, n, xq)
//   2. computes a range of output rows, typically one slice per thread:
//        m.mul(xq, n, y, ldy, r0, r1)    // y[t*ldy + r] for t < n, r0 <= r < r1
// n is the number of tokens (1 for decode: a GEMV; many for a prompt: a GEMM).
// Row ranges must start at a multiple of row_align() (the last one may end at rows()).
// Kernels are chosen by the current ISA (kernels/isa.h) when mul() runs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

namespace sparrow {

struct GGUFTensor;

// How a Matrix wants its input (quantize_input's output). Matrices with the same format
// and the same cols accept the same xq, so one quantization can serve several of them
// (e.g. the q, k and v projections).
// Every format mirrors ggml's vec_dot_type of the weight type (the type ggml converts
// the f32 activations to before the dot products), so both engines multiply the same
// numbers.
enum class InputFormat : int {
  F32 = 0,    // floats as given (F32 weights)
  Q8A = 1,    // BlockQ8A per 32 values (Q4_0 / Q8_0 weights; ggml: Q8_0)
  Q8KA = 2,   // BlockQ8KA per 256 values (Q4_K / Q5_K / Q6_K weights; ggml: Q8_K)
  F16R = 3,   // floats rounded to the nearest f16 value (F16 weights; ggml: F16)
  BF16R = 4,  // floats rounded to the nearest bf16 value (BF16 weights; ggml: BF16)
  Q8A1 = 5,   // BlockQ8A whose sum field holds, as a float, s = fp16(sum * amax / 127)
              // (Q4_1 / Q5_1 weights; ggml: Q8_1, whose s is that rounded product)
};

class Matrix {
 public:
  virtual ~Matrix() = default;
  int64_t rows() const { return rows_; }  // output features (GGUF ne[1])
  int64_t cols() const { return cols_; }  // input features  (GGUF ne[0])
  uint32_t type() const { return type_; } // ggml type id of the weights

  virtual InputFormat input_format() const = 0;
  // Bytes of quantized input for n tokens, and the quantization itself (x: n rows of cols floats).
  virtual size_t input_bytes(int64_t n) const = 0;
  virtual void quantize_input(const float* x, int64_t n, void* xq) const = 0;
  // y[t*ldy + r] = sum_c W[r][c] * x_t[c], for t in [0, n) and r in [r0, r1).
  virtual void mul(const void* xq, int64_t n, float* y, int64_t ldy, int64_t r0, int64_t r1) const = 0;
  virtual int64_t row_align() const { return 1; }
  // Row r as floats (token embeddings).
  virtual void get_row(int64_t r, float* out) const = 0;
  // The weights as given to make_matrix (GGUF blocks, row after row), for backends that
  // upload them as they are (the GPU backends); the caller keeps them alive. Null where
  // the weights exist only in another layout (native/sparse: channel-major).
  const void* source() const { return source_; }

 protected:
  Matrix(uint32_t type, int64_t rows, int64_t cols, const void* source)
      : rows_(rows), cols_(cols), type_(type), source_(source) {}
  int64_t rows_, cols_;
  uint32_t type_;
  const void* source_;
};

// A parallel-for for the repacking at load: calls fn(i) once for every i in [0, n),
// possibly on several threads at once, and returns when all calls have returned (and
// rethrows an exception of one of them). An empty one means: one after another, here.
using ParallelFor = std::function<void(int64_t n, const std::function<void(int64_t)>& fn)>;

// Makes the Matrix for a 2-D weight tensor. Throws a SparrowError ERR_UNSUPPORTED_TYPE
// naming the tensor and its type when sparrow-llm cannot compute with that type.
// Quantized weights are repacked (by row groups through `par` when given); the result
// does not depend on `par`.
std::unique_ptr<Matrix> make_matrix(const GGUFTensor& t, const ParallelFor& par = {});
// The same for raw data (tests, tied embeddings): `data` must outlive the Matrix.
std::unique_ptr<Matrix> make_matrix(uint32_t type, const void* data, int64_t rows, int64_t cols, const char* name,
                                    const ParallelFor& par = {});

}  // namespace sparrow
