// The KV cache of one session. For every layer and KV head, the keys of the positions a
// layer keeps form one contiguous matrix [positions][head_dim] (and the values another), so
// a head's keys can be used in place as the weight matrix of a GEMM (scores = K q).
// Rows are F16 (default, as llama.cpp) or Q8_0 (blocks of 32 along the head dimension
// with an fp16 scale: about half the memory). The memory is allocated without being
// touched, so only the positions used become resident.
//
// A layer with a sliding window w (Gemma 2/3 local layers) is only ever read at positions
// (p - w, p] by a token at p, so it keeps a window of slots instead of the whole context:
// positions [first(layer), first(layer) + slots(layer)) at slots [0, slots). Before a batch
// of positions [pos0, pos0 + n) is stored, prepare() moves the positions those tokens still
// see to the front (from a multiple of 4 at or before the first one they see, so that the
// attention's sums keep the same grouping as over a whole-context cache: same bits).
// Positions before first(layer) are gone for that layer.
#pragma once
#include "core/pages.h"
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace sparrow {

enum class KVType : uint32_t { F16 = 1, Q8_0 = 8 };  // ggml type ids
const char* kv_type_name(KVType t);                   // "f16", "q8_0"
bool kv_type_from_name(const std::string& name, KVType* out);

class KVCache {
 public:
  // Throws ERR_INVALID_ARG (naming kvCacheType) when Q8_0 rows do not split in blocks of 32.
  // windows: empty, or one per layer: its sliding window (0: the layer sees every position).
  // max_batch: the most positions of one sequence stored in one pass (sizes the windows).
  KVCache(int n_layer, int n_ctx, int n_head_kv, int head_dim, KVType type, const std::vector<int>& windows = {},
          int max_batch = 512);

  int n_layer() const { return n_layer_; }
  int n_ctx() const { return n_ctx_; }
  int n_head_kv() const { return n_head_kv_; }
  int head_dim() const { return head_dim_; }
  KVType type() const { return type_; }
  size_t row_bytes() const { return row_bytes_; }  // one position of one head
  size_t bytes() const { return bytes_; }
  // The bytes a cache of this shape takes (for reports: the windows make it smaller).
  static size_t bytes_for(int n_layer, int n_ctx, int n_head_kv, int head_dim, KVType type,
                          const std::vector<int>& windows = {}, int max_batch = 512);

  int window(int layer) const { return win_[size_t(layer)]; }
  int first(int layer) const { return first_[size_t(layer)]; }   // the first position a layer holds
  int slots(int layer) const { return slots_[size_t(layer)]; }   // positions a layer can hold
  bool windowed() const { return windowed_; }

  // Makes room in the windowed layers for positions [pos0, pos0 + n) of one pass, keeping
  // what those tokens see. Throws ERR_INTERNAL if the positions they see are gone or n is
  // more than max_batch (the callers prevent both).
  void prepare(int pos0, int n);
  // Whether a sequence of n_tokens positions can go on at position n_tokens: every
  // windowed layer still holds what the next token sees.
  bool can_continue(int n_tokens) const;
  // Starts again from position 0 (the windows move back to the start).
  void clear();
  // Restoring a state: layer `layer` holds positions from `first` on (a windowed layer;
  // the caller then writes them). ERR_INTERNAL if its window could not hold them.
  void set_first(int layer, int first);

  // Stores positions [pos, pos + n): row t of k is k + t * ld (n_head_kv * head_dim
  // floats, head after head), same for v.
  void store(int layer, int pos, int n, const float* k, const float* v, int64_t ld);
  // Positions [p0, p1) of one head as floats: out[(p - p0) * head_dim + j].
  void read_k(int layer, int head, int p0, int p1, float* out) const { read(k_at(layer, head, p0), p1 - p0, out); }
  void read_v(int layer, int head, int p0, int p1, float* out) const { read(v_at(layer, head, p0), p1 - p0, out); }
  // Overwrites the key of one head at one position with head_dim floats.
  void write_k(int layer, int head, int pos, const float* k);
  // Context shift of a sequence of n_tokens positions: moves positions [src, src + n) to
  // [dst, dst + n) (dst < src, src + n = n_tokens), keys and values of every layer and head.
  // The keys keep the rotation of their old positions. A windowed layer keeps what the
  // next token will see; if that includes kept positions before dst it no longer holds,
  // the move is refused (false, nothing changed): see can_move.
  bool move(int src, int dst, int n);
  bool can_move(int src, int dst, int n) const;

  // A GPU backend's copy of this cache (gpu/), freed with the cache.
  std::shared_ptr<void> device_copy;
  // Counts the host-side changes of the contents per position (store, write_k, move,
  // mark_changed; not prepare(), which only relocates the rows of a windowed layer): a
  // device copy made at another generation is stale. Whoever writes through k_at() /
  // v_at() calls mark_changed().
  uint64_t generation() const { return generation_; }
  void mark_changed() { generation_++; }

  // The row of position pos (>= first(layer)) of a head's keys / values; the next position
  // follows row_bytes() later.
  uint8_t* k_at(int layer, int head, int pos) const { return block(layer, 0, head) + slot(layer, pos) * row_bytes_; }
  uint8_t* v_at(int layer, int head, int pos) const { return block(layer, 1, head) + slot(layer, pos) * row_bytes_; }

 private:
  size_t slot(int layer, int pos) const { return size_t(pos - first_[size_t(layer)]); }
  uint8_t* block(int layer, int kv, int head) const {
    return data_.get() + off_[size_t(layer)] + (size_t(kv) * n_head_kv_ + head) * size_t(slots_[size_t(layer)]) * row_bytes_;
  }
  void read(const uint8_t* rows, int n, float* out) const;
  // One position of one head: head_dim floats to an F16 or Q8_0 row.
  void write_row(const float* x, uint8_t* out) const;

  int n_layer_, n_ctx_, n_head_kv_, head_dim_;
  KVType type_;
  size_t row_bytes_ = 0, bytes_ = 0;
  std::vector<int> win_, slots_, first_;
  std::vector<size_t> off_;
  bool windowed_ = false;
  uint64_t generation_ = 0;
  PageBuffer data_;
};

// f16 -> f32 through a 64K-entry table (no F16C needed in this baseline-flags file).
const float* f16_table();
inline float f16_to_f32_fast(uint16_t h) { return f16_table()[h]; }

}  // namespace sparrow
