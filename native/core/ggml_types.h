// Tensor element types as numbered in the GGUF format (ggml's type ids), with the
// size of one block. The reader knows every type so that it can validate and describe
// any file; which types the engine can compute with is decided in quant/ and kernels/.
#pragma once
#include <cstdint>

namespace sparrow {

enum class GGMLType : uint32_t {
  F32 = 0, F16 = 1, Q4_0 = 2, Q4_1 = 3, Q5_0 = 6, Q5_1 = 7, Q8_0 = 8, Q8_1 = 9,
  Q2_K = 10, Q3_K = 11, Q4_K = 12, Q5_K = 13, Q6_K = 14, Q8_K = 15,
  IQ2_XXS = 16, IQ2_XS = 17, IQ3_XXS = 18, IQ1_S = 19, IQ4_NL = 20, IQ3_S = 21,
  IQ2_S = 22, IQ4_XS = 23, I8 = 24, I16 = 25, I32 = 26, I64 = 27, F64 = 28,
  IQ1_M = 29, BF16 = 30, TQ1_0 = 34, TQ2_0 = 35, MXFP4 = 39,
};

struct TypeInfo {
  const char* name;     // "Q4_K"
  uint32_t block_size;  // elements per block
  uint32_t type_size;   // bytes per block
};

// nullptr for an id that is not a (current) ggml type.
const TypeInfo* type_info(uint32_t type_id);

// Name for messages: "Q4_K", or "unknown type 31".
const char* type_name(uint32_t type_id);

}  // namespace sparrow
