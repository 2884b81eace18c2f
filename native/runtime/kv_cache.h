// The KV cache of one session: for every layer, the keys and values of positions
// [0, n_ctx), one row of kv_dim = n_head_kv * head_dim values per position (the layout
// of llama.cpp's K cache). Rows are F16 (default, as llama.cpp) or Q8_0 (blocks of 32
// along the row with an fp16 scale: about half the memory). The memory is allocated
// without being touched, so only the positions used become resident.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace sparrow {

enum class KVType : uint32_t { F16 = 1, Q8_0 = 8 };  // ggml type ids
const char* kv_type_name(KVType t);                   // "f16", "q8_0"
bool kv_type_from_name(const std::string& name, KVType* out);

class KVCache {
 public:
  // Throws ERR_INVALID_ARG (naming kvCacheType) when Q8_0 rows do not split in blocks of 32.
  KVCache(int n_layer, int n_ctx, int kv_dim, KVType type);

  int n_layer() const { return n_layer_; }
  int n_ctx() const { return n_ctx_; }
  int kv_dim() const { return kv_dim_; }
  KVType type() const { return type_; }
  size_t row_bytes() const { return row_bytes_; }
  size_t bytes() const { return size_t(2) * n_layer_ * n_ctx_ * row_bytes_; }

  // Stores positions [pos, pos + n): row t of k is k + t * ld (kv_dim floats), same for v.
  void store(int layer, int pos, int n, const float* k, const float* v, int64_t ld);
  // Reads elements [c0, c0 + len) of positions [p0, p1) as floats: out[(p - p0) * len + j].
  void read_k(int layer, int p0, int p1, int c0, int len, float* out) const { read(k_row(layer, 0), p0, p1, c0, len, out); }
  void read_v(int layer, int p0, int p1, int c0, int len, float* out) const { read(v_row(layer, 0), p0, p1, c0, len, out); }

  uint8_t* k_row(int layer, int pos) const { return data_.get() + (size_t(layer) * 2 * n_ctx_ + pos) * row_bytes_; }
  uint8_t* v_row(int layer, int pos) const { return data_.get() + ((size_t(layer) * 2 + 1) * n_ctx_ + pos) * row_bytes_; }

 private:
  void read(const uint8_t* rows, int p0, int p1, int c0, int len, float* out) const;
  void quantize_row(const float* x, uint8_t* out) const;

  int n_layer_, n_ctx_, kv_dim_;
  KVType type_;
  size_t row_bytes_;
  std::unique_ptr<uint8_t[], void (*)(void*)> data_;
};

// f16 -> f32 through a 64K-entry table (no F16C needed in this baseline-flags file).
const float* f16_table();
inline float f16_to_f32_fast(uint16_t h) { return f16_table()[h]; }

}  // namespace sparrow
