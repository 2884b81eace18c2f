// Quantized block formats and their plain reference (de)quantizers.
//
// Weight blocks follow the GGUF/ggml definitions byte for byte (the structs below are
// written from the format description; static_asserts pin the sizes). Activation
// blocks (BlockQ8A, BlockQ8KA) are sparrow's own: they only live in scratch memory.
//
// Value layouts (element i of a block):
//   Q8_0  x[i] = d * qs[i]                                      32 values, 34 bytes
//   Q4_0  x[i] = d * ((qs[i%16] >> 4*(i/16)) & 15) - 8)         32 values, 18 bytes
//   Q4_K  256 values in 8 sub-blocks of 32, each with a 6-bit scale sc[j] and min m[j]:
//         x[i] = d * sc[j] * q[i] - dmin * m[j], j = i/32, q[i] 4 bits:
//         byte qs[32*(i/64) + i%32], low nibble when (i/32) is even, else high nibble.
//         (sc, m) packed in scales[12]: for j < 4, sc = scales[j] & 63, m = scales[j+4] & 63;
//         for j >= 4, sc = (scales[j+4] & 15) | (scales[j-4] >> 6) << 4,
//                     m  = (scales[j+4] >> 4) | (scales[j]   >> 6) << 4.
//   Q5_K  as Q4_K, plus a fifth bit: bit (i/32) of qh[i%32] adds 16 to q[i].    176 bytes
//   Q6_K  256 values in 16 sub-blocks of 16 with int8 scales: x[i] = d * sc[i/16] * (q[i] - 32),
//         q[i] 6 bits: i = 128*h + 32*k + l (h < 2, k < 4, l < 32):
//         low 4 bits = nibble (k/2 ? high : low) of ql[64*h + 32*(k&1) + l],
//         high 2 bits = bits 2k..2k+1 of qh[32*h + l].                           210 bytes
#pragma once
#include <cstddef>
#include <cstdint>

namespace sparrow {

constexpr int QK = 32;    // Q4_0 / Q8_0 block
constexpr int QK_K = 256; // K-quant super-block

struct BlockQ8_0 { uint16_t d; int8_t qs[32]; };
struct BlockQ4_0 { uint16_t d; uint8_t qs[16]; };
struct BlockQ4_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qs[128]; };
struct BlockQ5_K { uint16_t d; uint16_t dmin; uint8_t scales[12]; uint8_t qh[32]; uint8_t qs[128]; };
struct BlockQ6_K { uint8_t ql[128]; uint8_t qh[64]; int8_t scales[16]; uint16_t d; };
static_assert(sizeof(BlockQ8_0) == 34, "Q8_0 block");
static_assert(sizeof(BlockQ4_0) == 18, "Q4_0 block");
static_assert(sizeof(BlockQ4_K) == 144, "Q4_K block");
static_assert(sizeof(BlockQ5_K) == 176, "Q5_K block");
static_assert(sizeof(BlockQ6_K) == 210, "Q6_K block");

// Activations for Q4_0 / Q8_0 weights: x[i] ~= d * qs[i], |qs| <= 127, sum = sum of qs.
struct BlockQ8A { float d; int32_t sum; int8_t qs[32]; };
// Activations for K-quant weights: 256 values, bsums[k] = sum of qs[16k..16k+15],
// bsums32[k] = sum of qs[32k..32k+31].
struct BlockQ8KA { float d; int16_t bsums[16]; int16_t bsums32[8]; int8_t qs[256]; };
static_assert(sizeof(BlockQ8A) == 40, "Q8A block");
static_assert(sizeof(BlockQ8KA) == 308, "Q8KA block");

// Types sparrow computes with (ggml ids): F32 0, F16 1, Q4_0 2, Q8_0 8, Q4_K 12,
// Q5_K 13, Q6_K 14, BF16 30.
bool quant_supported(uint32_t type);
// Elements per block and bytes per block for a supported type (F32/F16/BF16: 1 element).
int64_t quant_block_size(uint32_t type);
size_t quant_block_bytes(uint32_t type);
size_t quant_row_bytes(uint32_t type, int64_t n);  // n must be a multiple of the block size

// Reference dequantization of n values (n a multiple of the block size).
void dequantize_row(uint32_t type, const void* src, float* dst, int64_t n);
// Reference quantization (round to nearest; K-quants with a simple min/max fit, good
// enough for tests; it is not ggml's search-based quantizer).
void quantize_row(uint32_t type, const float* src, void* dst, int64_t n);

// The 6-bit (scale, min) pair j (0..7) of a Q4_K / Q5_K block.
void kquant_scale_min(const uint8_t scales[12], int j, uint8_t* sc, uint8_t* m);
// Integer contents of one K-quant block: q[256] in 0..15 (Q4_K), 0..31 (Q5_K), 0..63 (Q6_K).
void unpack_q4_k(const BlockQ4_K& b, uint8_t q[256], uint8_t sc[8], uint8_t m[8]);
void unpack_q5_k(const BlockQ5_K& b, uint8_t q[256], uint8_t sc[8], uint8_t m[8]);
void unpack_q6_k(const BlockQ6_K& b, uint8_t q[256]);

// Activation quantizers: n values (a multiple of 32 / 256).
void quantize_row_q8a(const float* x, BlockQ8A* y, int64_t n);
void quantize_row_q8ka(const float* x, BlockQ8KA* y, int64_t n);

}  // namespace sparrow
