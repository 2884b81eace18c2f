// The KV cache of one session. For every layer and KV head, the keys of positions
// [0, n_ctx) form one contiguous matrix [n_ctx][head_dim] (and the values another), so
// a head's keys can be used in place as the weight matrix of a GEMM (scores = K q).
// Rows are F16 (default, as llama.cpp) or Q8_0 (blocks of 32 along the head dimension
// with an fp16 scale: about half the memory). The memory is allocated without being
// touched, so only the positions used become resident.
#pragma once
#include "core/pages.h"
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
  KVCache(int n_layer, int n_ctx, int n_head_kv, int head_dim, KVType type);

  int n_layer() const { return n_layer_; }
  int n_ctx() const { return n_ctx_; }
  int n_head_kv() const { return n_head_kv_; }
  int head_dim() const { return head_dim_; }
  KVType type() const { return type_; }
  size_t row_bytes() const { return row_bytes_; }  // one position of one head
  size_t bytes() const { return size_t(2) * n_layer_ * n_head_kv_ * n_ctx_ * row_bytes_; }

  // Stores positions [pos, pos + n): row t of k is k + t * ld (n_head_kv * head_dim
  // floats, head after head), same for v.
  void store(int layer, int pos, int n, const float* k, const float* v, int64_t ld);
  // Positions [p0, p1) of one head as floats: out[(p - p0) * head_dim + j].
  void read_k(int layer, int head, int p0, int p1, float* out) const { read(k_head(layer, head), p0, p1, out); }
  void read_v(int layer, int head, int p0, int p1, float* out) const { read(v_head(layer, head), p0, p1, out); }
  // Overwrites the key of one head at one position with head_dim floats.
  void write_k(int layer, int head, int pos, const float* k);
  // Moves positions [src, src + n) to [dst, dst + n), keys and values of every layer and
  // head (the ranges may overlap). The keys keep the rotation of their old positions.
  void move(int src, int dst, int n);

  // A GPU backend's copy of this cache (gpu/), freed with the cache.
  std::shared_ptr<void> device_copy;
  // Counts the host-side changes of the contents (store, write_k, move, mark_changed): a
  // device copy made at another generation is stale. Whoever writes through k_head() /
  // v_head() calls mark_changed().
  uint64_t generation() const { return generation_; }
  void mark_changed() { generation_++; }

  // The first position of a head's keys / values; the next position follows row_bytes() later.
  uint8_t* k_head(int layer, int head) const { return block(layer, 0, head); }
  uint8_t* v_head(int layer, int head) const { return block(layer, 1, head); }

 private:
  uint8_t* block(int layer, int kv, int head) const {
    return data_.get() + ((size_t(layer) * 2 + kv) * n_head_kv_ + head) * n_ctx_ * row_bytes_;
  }
  void read(const uint8_t* rows, int p0, int p1, float* out) const;
  // One position of one head: head_dim floats to an F16 or Q8_0 row.
  void write_row(const float* x, uint8_t* out) const;

  int n_layer_, n_ctx_, n_head_kv_, head_dim_;
  KVType type_;
  size_t row_bytes_;
  uint64_t generation_ = 0;
  PageBuffer data_;
};

// f16 -> f32 through a 64K-entry table (no F16C needed in this baseline-flags file).
const float* f16_table();
inline float f16_to_f32_fast(uint16_t h) { return f16_table()[h]; }

}  // namespace sparrow
