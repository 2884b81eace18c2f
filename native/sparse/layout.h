// The channel-major ("sparse") weight layouts of native/sparse: constants only (no code),
// so the per-ISA kernel files may include it.
//
// Decode is memory-bound. When many entries of a decoded token's activation are zero at a
// matmul input, the weights of those input channels need not be read at all. The layouts
// below keep each input channel's quantized values of a group of rows contiguous, so a
// skipped channel is a skipped run of whole cache lines.
//
// Rows are taken in groups of kSparseRows = 128 (the last group is padded with zero rows:
// scale 0, quants 0). Per group, per quant block of the file (32 columns for Q4_0/Q8_0),
// one "group block":
//   [0, 256)   d[128]: the fp16 scale of each row of the group, in row order
//   then, for each of the block's 32 input channels c in order, the 128 rows' quants of
//   channel c ("channel vector"):
//     Q8_0: 128 bytes: byte h*64 + p = q ^ 0x80 (the file's int8 stored as unsigned q + 128)
//           of row 64 h + slot_row(p)                    (4352 bytes per group block)
//     Q4_0: 64 bytes: byte p = nibble of row slot_row(p) (low nibble) | nibble of row
//           64 + slot_row(p) (high nibble), the file's 4-bit values 0..15 (value - 8)
//                                                        (2304 bytes per group block)
//   where slot_row(p) = 16 ((p >> 2) & 3) + 4 (p >> 4) + (p & 3) (its own inverse): the
//   order in which byte-unpacking (unpacklo/hi_epi8 then _epi16 within 128-bit lanes) of
//   four channel vectors yields rows 16j..16j+15 in the 32-bit lanes of vector j, ready
//   for vpdpbusd. Every quant and scale is the file's, unchanged; the group block holds
//   exactly as many bytes as the file spends on those 128 rows x 32 columns.
//
// The other 32-column types, per block (the same 64-byte nibble channel vectors as Q4_0;
// for the 5-bit types followed by Q5_K's 16 bytes of fifth bits):
//   Q5_0:   [0, 256) d[128] fp16, then 32 channel vectors of 80 bytes (q 0..31, value
//           q - 16)                                      (2816 bytes per group block)
//   Q4_1:   [0, 256) d[128] fp16, [256, 512) m[128] fp16, 32 channel vectors of 64 bytes
//           (value d q + m)                              (2560)
//   Q5_1:   as Q4_1 with 80-byte channel vectors         (3072)
//   IQ4_NL: as Q4_0, the nibbles being codebook indices  (2304)
//   MXFP4:  [0, 128) e[128] E8M0 exponent bytes, 32 channel vectors of 64 bytes of codebook
//           indices                                      (2176)
// each exactly the file's bytes for those 128 rows x 32 columns.
//
// The K-quants, per super-block of the file (256 columns), with the same 64-byte nibble
// channel vectors as Q4_0 (low nibble: row slot_row(p), high: row 64 + slot_row(p)):
//   Q4_K: [0, 256) d[128] fp16   [256, 512) dmin[128] fp16
//         [512, 1536) byte 512 + 128 j + r = the 6-bit scale of sub-block j (32 columns) of row r
//         [1536, 2560) byte 1536 + 128 j + r = the 6-bit min of sub-block j of row r
//         [2560, 18944) 256 channel vectors of 64 bytes (the low 4 bits of q, 0..15)
//   Q5_K: the Q4_K header, then 256 channel vectors of 80 bytes: the 64 bytes of low 4 bits,
//         then 16 bytes of fifth bits: bit p % 8 of byte 64 + 8 h + p / 8 is that of row
//         64 h + slot_row(p)                             (23040 bytes per group block)
//   Q6_K: [0, 256) d[128] fp16
//         [256, 2304) byte 256 + 128 s + r = the int8 scale of sub-block s (16 columns) of row r
//         [2304, 26880) 256 channel vectors of 96 bytes: 64 bytes of low 4 bits as above, then
//         32 bytes of high 2 bits: bits 2k..2k+1 of byte i are those of row 64 (k >> 1) +
//         slot_row(i + 32 (k & 1)) (q = low | high << 4 in 0..63; the value is q - 32)
// Q4_K's scales and mins are unpacked from the file's 12 bytes (get_row packs them back
// exactly), so it holds 148 bytes per row and super-block (the file 144, the dense layout
// 148), Q5_K 180 (176, 180); Q6_K holds exactly the file's 210.
//
// Activations are BlockQ8A (quant/quant.h), as for the dense kernels (Q4_1 and Q5_1: with
// the float s in place of the sum, InputFormat::Q8A1); BlockQ8KA for the K-quants. A channel is skipped
// when its int8 activation is 0 in every token of the call: the integer block sums do not
// change, so a sparse kernel's output is bit-identical to the dense kernel of its ISA.
#pragma once

namespace sparrow {

constexpr int kSparseRows = 128;
constexpr int kSparseScaleBytes = 2 * kSparseRows;  // fp16 d of each row, per block
constexpr int kSparseQ4_0Channel = 64;
constexpr int kSparseQ8_0Channel = 128;
constexpr int kSparseQ4_0Block = kSparseScaleBytes + 32 * kSparseQ4_0Channel;  // 2304
constexpr int kSparseQ8_0Block = kSparseScaleBytes + 32 * kSparseQ8_0Channel;  // 4352
constexpr int kSparseQ4_KHead = 2560;
constexpr int kSparseQ4_KBlock = kSparseQ4_KHead + 256 * 64;  // 18944
constexpr int kSparseQ5_KChannel = 80;
constexpr int kSparseQ5_KBlock = kSparseQ4_KHead + 256 * kSparseQ5_KChannel;  // 23040
constexpr int kSparseQ6_KHead = 2304;
constexpr int kSparseQ6_KChannel = 96;
constexpr int kSparseQ6_KBlock = kSparseQ6_KHead + 256 * kSparseQ6_KChannel;  // 26880
constexpr int kSparseQ5_0Block = kSparseScaleBytes + 32 * kSparseQ5_KChannel;          // 2816
constexpr int kSparseQ4_1Block = 2 * kSparseScaleBytes + 32 * kSparseQ4_0Channel;      // 2560
constexpr int kSparseQ5_1Block = 2 * kSparseScaleBytes + 32 * kSparseQ5_KChannel;      // 3072
constexpr int kSparseMXFP4Head = kSparseRows;                                          // e[128]
constexpr int kSparseMXFP4Block = kSparseMXFP4Head + 32 * kSparseQ4_0Channel;          // 2176
constexpr int kSparseMaxTokens = 8;  // the sparse kernels take n <= 8 tokens

}  // namespace sparrow
