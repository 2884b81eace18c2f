// SparseMatrix (sparse/sparse_matrix.h): the channel-major repacking at load, the choice
// between the sparse kernel and the dense kernel on a repacked scratch copy, get_row, and
// the per-ISA table of sparse kernels.
#include "sparse/sparse_matrix.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/ggml_types.h"
#include "core/pages.h"
#include "kernels/kernels.h"
#include "kernels/layout.h"
#include "quant/fp16.h"
#include "quant/quant.h"
#include "sparse/layout.h"
#include "sparse/sparse_kernels.h"

namespace sparrow {

namespace {

const SparseKernels kSparseGeneric = {sp_smm_q4_0_generic, sp_smm_q8_0_generic};
const SparseKernels kSparseNone = {nullptr, nullptr};
#ifdef SPARROW_HAVE_X86_KERNELS
const SparseKernels kSparseAvx512 = {sp_smm_q4_0_avx512, sp_smm_q8_0_avx512};
#endif

enum : uint32_t { kQ4_0 = 2, kQ8_0 = 8 };

// The byte of a channel vector half that holds row rr (< 64) (sparse/layout.h slot_row,
// its own inverse).
int slot_of(int rr) { return 16 * ((rr >> 2) & 3) + 4 * (rr >> 4) + (rr & 3); }

uint16_t get16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

class SparseMatrix final : public Matrix {
 public:
  SparseMatrix(uint32_t type, const uint8_t* data, int64_t rows, int64_t cols, std::shared_ptr<SparseStats> stats,
               const ParallelFor& par)
      : Matrix(type, rows, cols),
        q4_(type == kQ4_0),
        nb_(cols / 32),
        block_(q4_ ? kSparseQ4_0Block : kSparseQ8_0Block),
        chan_(q4_ ? kSparseQ4_0Channel : kSparseQ8_0Channel),
        groups_((rows + kSparseRows - 1) / kSparseRows),
        stats_(std::move(stats)) {
    const int64_t group_bytes = nb_ * block_;
    w_ = PageBuffer(size_t(groups_ * group_bytes), "channel-major weights");
    const size_t src_block = quant_block_bytes(type);
    auto repack_group = [&](int64_t g) {
      uint8_t* wg = w_.get() + g * group_bytes;
      prefault_pages(wg, size_t(group_bytes));
      const int64_t row_end = std::min(rows, (g + 1) * kSparseRows);
      for (int64_t row = g * kSparseRows; row < row_end; row++) {
        const int rr = int(row % kSparseRows), h = rr / 64, p = slot_of(rr % 64);
        for (int64_t b = 0; b < nb_; b++) {
          const uint8_t* src = data + (row * nb_ + b) * int64_t(src_block);
          uint8_t* blk = wg + b * block_;
          std::memcpy(blk + 2 * rr, src, 2);  // d comes first in both file blocks
          uint8_t* ch = blk + kSparseScaleBytes;
          if (q4_) {
            const uint8_t* qs = src + offsetof(BlockQ4_0, qs);
            for (int c = 0; c < 32; c++) {
              const int v = c < 16 ? qs[c] & 15 : qs[c - 16] >> 4;
              ch[c * chan_ + p] = uint8_t(ch[c * chan_ + p] | v << (4 * h));
            }
          } else {
            const uint8_t* qs = src + offsetof(BlockQ8_0, qs);
            for (int c = 0; c < 32; c++) ch[c * chan_ + 64 * h + p] = uint8_t(qs[c] ^ 0x80);
          }
        }
      }
    };
    if (par && groups_ > 1) par(groups_, repack_group);
    else for (int64_t g = 0; g < groups_; g++) repack_group(g);
  }

  InputFormat input_format() const override { return InputFormat::Q8A; }
  size_t input_bytes(int64_t n) const override { return size_t(n * nb_ * kQ8ABytes); }
  void quantize_input(const float* x, int64_t n, void* xq) const override {
    const Kernels& k = kernels();
    for (int64_t t = 0; t < n; t++) k.quantize_q8a(x + t * cols_, static_cast<uint8_t*>(xq) + t * nb_ * kQ8ABytes, cols_);
  }
  int64_t row_align() const override { return kSparseRows; }

  void mul(const void* xq, int64_t n, float* y, int64_t ldy, int64_t r0, int64_t r1) const override {
    if (r0 < 0 || r1 > rows_ || r0 > r1 || (r0 % kSparseRows != 0 && r0 != r1))
      throw sparrow_error("ERR_INTERNAL", "SparseMatrix::mul: row range [" + std::to_string(r0) + ", " +
                                              std::to_string(r1) + ") is not aligned to 128 or out of range");
    if (r0 == r1 || n <= 0) return;
    const int64_t g0 = r0 / kSparseRows, g1 = (r1 + kSparseRows - 1) / kSparseRows;
    const uint64_t dense_bytes = uint64_t(g1 - g0) * uint64_t(nb_ * block_);
    const Isa isa = current_isa();
    const SparseKernels& sk = sparse_kernels_for(isa);
    SparseMatMulFn fn = q4_ ? sk.smm_q4_0 : sk.smm_q8_0;
    uint64_t read = dense_bytes;
    if (fn && n <= kSparseMaxTokens)
      read = fn(w_.get(), cols_, xq, n, y, ldy, g0, g1, r1);
    else
      mul_dense(kernels_for(isa), xq, n, y, ldy, g0, g1, r1);
    if (stats_) {
      stats_->read.fetch_add(read, std::memory_order_relaxed);
      stats_->dense.fetch_add(dense_bytes, std::memory_order_relaxed);
    }
  }

  void get_row(int64_t r, float* out) const override {
    const int rr = int(r % kSparseRows);
    const uint8_t* wg = w_.get() + (r / kSparseRows) * nb_ * block_;
    for (int64_t b = 0; b < nb_; b++) {
      const uint8_t* blk = wg + b * block_;
      const float d = fp16_to_fp32(get16(blk + 2 * rr));
      for (int c = 0; c < 32; c++) {
        const int q = value(blk, rr, c);
        out[b * 32 + c] = q4_ ? d * float(q - 8) : d * float(int8_t(uint8_t(q) ^ 0x80));
      }
    }
  }

 private:
  // The stored quant of row rr (< 128) and channel c of a group block: the nibble (Q4_0),
  // or q ^ 0x80 (Q8_0).
  int value(const uint8_t* blk, int rr, int c) const {
    const int h = rr / 64, p = slot_of(rr % 64);
    const uint8_t* ch = blk + kSparseScaleBytes + c * chan_;
    return q4_ ? (ch[p] >> (4 * h)) & 15 : ch[64 * h + p];
  }

  // Repacks group g into the dense 16-row layout of kernels/layout.h (8 dense groups).
  void to_dense(int64_t g, uint8_t* dst) const {
    const int dblock = q4_ ? kQ4_0GroupBlock : kQ8_0GroupBlock;
    const uint8_t* wg = w_.get() + g * nb_ * block_;
    for (int dg = 0; dg < kSparseRows / kGroupRows; dg++)
      for (int64_t b = 0; b < nb_; b++) {
        const uint8_t* blk = wg + b * block_;
        uint8_t* out = dst + (dg * nb_ + b) * dblock;
        for (int r = 0; r < kGroupRows; r++) {
          const int rr = dg * kGroupRows + r;
          std::memcpy(out + 2 * r, blk + 2 * rr, 2);
          if (q4_)
            for (int i = 0; i < 16; i++)
              out[32 + 64 * (i / 4) + 4 * r + i % 4] = uint8_t(value(blk, rr, i) | value(blk, rr, 16 + i) << 4);
          else
            for (int i = 0; i < 32; i++) out[32 + 64 * (i / 4) + 4 * r + i % 4] = uint8_t(value(blk, rr, i));
        }
      }
  }

  // The dense kernel over each group repacked into a per-thread scratch buffer; tokens
  // in chunks as the dense Matrix does (each output depends only on its row and token).
  void mul_dense(const Kernels& k, const void* xq, int64_t n, float* y, int64_t ldy, int64_t g0, int64_t g1,
                 int64_t r1) const {
    thread_local std::vector<uint8_t> scratch;
    const int dblock = q4_ ? kQ4_0GroupBlock : kQ8_0GroupBlock;
    const size_t need = size_t(kSparseRows / kGroupRows) * size_t(nb_) * size_t(dblock);
    if (scratch.size() < need) scratch.resize(need);
    QMatMulFn fn = q4_ ? k.mm_q4_0 : k.mm_q8_0;
    const int64_t xrow = nb_ * kQ8ABytes;
    const int64_t chunk = std::max<int64_t>(8, (int64_t(192) * 1024 / xrow) / 8 * 8);
    const uint8_t* x = static_cast<const uint8_t*>(xq);
    for (int64_t g = g0; g < g1; g++) {
      to_dense(g, scratch.data());
      const int64_t row0 = g * kSparseRows, rlimit = std::min(r1, row0 + kSparseRows) - row0;
      const int64_t dg1 = (rlimit + kGroupRows - 1) / kGroupRows;
      for (int64_t t0 = 0; t0 < n; t0 += chunk)
        fn(scratch.data(), cols_, x + t0 * xrow, std::min(chunk, n - t0), y + t0 * ldy + row0, ldy, 0, dg1, rlimit);
    }
  }

  bool q4_;
  int64_t nb_;
  int block_, chan_;
  int64_t groups_;
  std::shared_ptr<SparseStats> stats_;
  PageBuffer w_;
};

}  // namespace

const SparseKernels& sparse_kernels_for(Isa isa) {
  switch (isa) {
    case Isa::Generic: return kSparseGeneric;
#ifdef SPARROW_HAVE_X86_KERNELS
    case Isa::AVX512: return kSparseAvx512;
#endif
    default: return kSparseNone;
  }
}

bool sparse_supported(uint32_t type) { return type == kQ4_0 || type == kQ8_0; }
const char* sparse_supported_names() { return "Q4_0, Q8_0"; }

std::unique_ptr<Matrix> make_sparse_matrix(uint32_t type, const void* data, int64_t rows, int64_t cols,
                                           const char* name, std::shared_ptr<SparseStats> stats,
                                           const ParallelFor& par) {
  if (!sparse_supported(type))
    throw sparrow_error("ERR_UNSUPPORTED_TYPE", std::string("tensor '") + name + "' has type " + type_name(type) +
                                                    ", which has no channel-major (sparse) layout (supported: " +
                                                    sparse_supported_names() + ")");
  if (rows <= 0 || cols <= 0 || cols % 32 != 0)
    throw sparrow_error("ERR_BAD_TENSOR_SHAPE", std::string("tensor '") + name + "' of type " + type_name(type) +
                                                    " has " + std::to_string(cols) +
                                                    " columns, not a positive multiple of its block size 32");
  return std::make_unique<SparseMatrix>(type, static_cast<const uint8_t*>(data), rows, cols, std::move(stats), par);
}

}  // namespace sparrow
