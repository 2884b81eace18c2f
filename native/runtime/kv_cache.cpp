#include "kv_cache.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <new>
#include <vector>

#include "core/error.h"
#include "kernels/kernels.h"
#include "quant/fp16.h"

namespace sparrow {

namespace {
constexpr int kQ8Block = 32;
constexpr size_t kQ8BlockBytes = 2 + kQ8Block;  // fp16 scale + 32 int8
}  // namespace

const char* kv_type_name(KVType t) { return t == KVType::Q8_0 ? "q8_0" : "f16"; }

bool kv_type_from_name(const std::string& name, KVType* out) {
  if (name == "f16" || name == "F16") *out = KVType::F16;
  else if (name == "q8_0" || name == "Q8_0") *out = KVType::Q8_0;
  else return false;
  return true;
}

const float* f16_table() {
  static const float* table = [] {
    float* t = new float[65536];
    for (uint32_t i = 0; i < 65536; i++) t[i] = fp16_to_fp32(uint16_t(i));
    return t;
  }();
  return table;
}

namespace {
// Slots of a layer: the whole context, or with a sliding window w what a pass of up to
// max_batch positions needs: the w - 1 positions before it, up to 3 more to start at a
// multiple of 4, and the pass itself.
int layer_slots(int n_ctx, int window, int max_batch) {
  if (window <= 0) return n_ctx;
  const int64_t need = int64_t(window) + 3 + std::max(1, max_batch);
  return need >= n_ctx ? n_ctx : int(need);
}
size_t row_bytes_of(int head_dim, KVType type) {
  return type == KVType::Q8_0 ? size_t(head_dim / kQ8Block) * kQ8BlockBytes : size_t(head_dim) * 2;
}
int align4(int p) { return p & ~3; }
// The first position a token at pos sees, and the slot-aligned start of what it needs.
int seen_from(int pos, int window) { return std::max(0, pos + 1 - window); }
}  // namespace

size_t KVCache::bytes_for(int n_layer, int n_ctx, int n_head_kv, int head_dim, KVType type, const std::vector<int>& windows,
                          int max_batch) {
  size_t total = 0;
  for (int l = 0; l < n_layer; l++) {
    const int w = windows.empty() ? 0 : windows[size_t(l)];
    total += size_t(2) * n_head_kv * size_t(layer_slots(n_ctx, w, max_batch)) * row_bytes_of(head_dim, type);
  }
  return total;
}

KVCache::KVCache(int n_layer, int n_ctx, int n_head_kv, int head_dim, KVType type, const std::vector<int>& windows,
                 int max_batch)
    : n_layer_(n_layer), n_ctx_(n_ctx), n_head_kv_(n_head_kv), head_dim_(head_dim), type_(type) {
  if (type == KVType::Q8_0 && head_dim % kQ8Block != 0)
    throw sparrow_error("ERR_INVALID_ARG", "kvCacheType 'q8_0' needs a head dimension that is a multiple of 32 (this model's is " +
                                               std::to_string(head_dim) + "); use 'f16'");
  if (!windows.empty() && windows.size() != size_t(n_layer))
    throw sparrow_error("ERR_INTERNAL", "KVCache: one sliding window per layer expected");
  row_bytes_ = row_bytes_of(head_dim, type);
  for (int l = 0; l < n_layer; l++) {
    const int w = windows.empty() ? 0 : windows[size_t(l)];
    const int slots = layer_slots(n_ctx, w, max_batch);
    // A window as large as the context is no window: the layer keeps every position.
    win_.push_back(slots < n_ctx ? w : 0);
    windowed_ = windowed_ || slots < n_ctx;
    slots_.push_back(slots);
    first_.push_back(0);
    off_.push_back(bytes_);
    bytes_ += size_t(2) * n_head_kv * size_t(slots) * row_bytes_;
  }
  // Fresh pages: untouched (not resident) until a position is written, and given back
  // to the OS when the session goes.
  data_ = PageBuffer(bytes_, "the KV cache");
}

void KVCache::clear() {
  generation_++;
  std::fill(first_.begin(), first_.end(), 0);
}

void KVCache::set_first(int layer, int first) {
  if (first < 0 || first > n_ctx_ || (win_[size_t(layer)] == 0 && first != 0))
    throw sparrow_error("ERR_INTERNAL", "KV cache: layer " + std::to_string(layer) + " cannot start at " + std::to_string(first));
  first_[size_t(layer)] = first;
}

bool KVCache::can_continue(int n_tokens) const {
  for (int l = 0; l < n_layer_; l++)
    if (win_[size_t(l)] > 0 && align4(seen_from(n_tokens, win_[size_t(l)])) < first_[size_t(l)]) return false;
  return true;
}

void KVCache::prepare(int pos0, int n) {
  for (int l = 0; l < n_layer_; l++) {
    const int w = win_[size_t(l)];
    if (w == 0) continue;
    const int lo = align4(seen_from(pos0, w)), first = first_[size_t(l)], slots = slots_[size_t(l)];
    if (lo < first)
      throw sparrow_error("ERR_INTERNAL", "KV cache: layer " + std::to_string(l) + " no longer holds position " + std::to_string(lo));
    if (pos0 + n - lo > slots)
      throw sparrow_error("ERR_INTERNAL", "KV cache: a pass of " + std::to_string(n) + " positions does not fit the window of layer " +
                                              std::to_string(l));
    if (pos0 + n - first <= slots) continue;
    // Move the positions [lo, pos0) the pass still sees to the front.
    const int keep = std::max(0, std::min(pos0, first + slots) - lo);
    for (int h = 0; h < n_head_kv_; h++)
      for (int kv = 0; kv < 2; kv++) {
        uint8_t* b = block(l, kv, h);
        std::memmove(b, b + size_t(lo - first) * row_bytes_, size_t(keep) * row_bytes_);
      }
    first_[size_t(l)] = lo;
  }
}

void KVCache::write_row(const float* x, uint8_t* out) const {
  if (type_ == KVType::F16) return kernels().f32_to_f16(x, reinterpret_cast<uint16_t*>(out), head_dim_);
  for (int b = 0; b < head_dim_ / kQ8Block; b++, x += kQ8Block, out += kQ8BlockBytes) {
    float amax = 0;
    for (int i = 0; i < kQ8Block; i++) amax = std::fmax(amax, std::fabs(x[i]));
    float d = amax / 127.0f, id = d != 0 ? 1.0f / d : 0.0f;
    uint16_t dh = fp32_to_fp16(d);
    std::memcpy(out, &dh, 2);
    int8_t* q = reinterpret_cast<int8_t*>(out + 2);
    for (int i = 0; i < kQ8Block; i++) q[i] = int8_t(std::lround(x[i] * id));
  }
}

void KVCache::store(int layer, int pos, int n, const float* k, const float* v, int64_t ld) {
  generation_++;
  for (int h = 0; h < n_head_kv_; h++)
    for (int t = 0; t < n; t++) {
      write_row(k + t * ld + size_t(h) * head_dim_, k_at(layer, h, pos + t));
      write_row(v + t * ld + size_t(h) * head_dim_, v_at(layer, h, pos + t));
    }
}

void KVCache::write_k(int layer, int head, int pos, const float* k) {
  generation_++;
  write_row(k, k_at(layer, head, pos));
}

bool KVCache::can_move(int src, int dst, int n) const {
  const int end = dst + n;  // the next position after the move
  for (int l = 0; l < n_layer_; l++) {
    const int w = win_[size_t(l)];
    if (w == 0) continue;
    // The kept positions the next token sees must still be there.
    const int from = seen_from(end, w);
    if (from < dst && from < first_[size_t(l)]) return false;
    // As must the moved ones (always so after a pass; checked for restored states).
    if (n > 0 && std::max(from, dst) + (src - dst) < first_[size_t(l)]) return false;
  }
  return true;
}

bool KVCache::move(int src, int dst, int n) {
  if (!can_move(src, dst, n)) return false;
  generation_++;
  const int d = src - dst, end = dst + n;
  std::vector<uint8_t> tmp;
  for (int layer = 0; layer < n_layer_; layer++) {
    const int w = win_[size_t(layer)];
    if (w == 0) {
      if (n <= 0 || d == 0) continue;
      for (int h = 0; h < n_head_kv_; h++)
        for (int kv = 0; kv < 2; kv++) {
          uint8_t* base = block(layer, kv, h);
          std::memmove(base + size_t(dst) * row_bytes_, base + size_t(src) * row_bytes_, size_t(n) * row_bytes_);
        }
      continue;
    }
    // A windowed layer: positions [lo, end) of the shifted sequence (kept ones below dst,
    // moved ones from dst), rebuilt at the front. Slots whose old position is gone are
    // only ever masked (they precede what the next token sees): zeros.
    const int lo = align4(seen_from(end, w)), first = first_[size_t(layer)], slots = slots_[size_t(layer)];
    const size_t rows = size_t(end - lo);
    tmp.assign(rows * row_bytes_, 0);
    for (int h = 0; h < n_head_kv_; h++)
      for (int kv = 0; kv < 2; kv++) {
        uint8_t* b = block(layer, kv, h);
        std::fill(tmp.begin(), tmp.end(), uint8_t(0));
        for (int q = lo; q < end; q++) {
          const int old = q < dst ? q : q + d;
          if (old >= first && old < first + slots)
            std::memcpy(tmp.data() + size_t(q - lo) * row_bytes_, b + size_t(old - first) * row_bytes_, row_bytes_);
        }
        std::memcpy(b, tmp.data(), tmp.size());
      }
    first_[size_t(layer)] = lo;
  }
  return true;
}

void KVCache::read(const uint8_t* rows, int n, float* out) const {
  if (type_ == KVType::F16) {
    kernels().f16_to_f32(reinterpret_cast<const uint16_t*>(rows), out, int64_t(n) * head_dim_);
    return;
  }
  const float* tab = f16_table();
  for (int p = 0; p < n; p++) {
    const uint8_t* blk = rows + size_t(p) * row_bytes_;
    for (int b = 0; b < head_dim_ / kQ8Block; b++, blk += kQ8BlockBytes, out += kQ8Block) {
      uint16_t dh;
      std::memcpy(&dh, blk, 2);
      const float d = tab[dh];
      const int8_t* q = reinterpret_cast<const int8_t*>(blk + 2);
      for (int e = 0; e < kQ8Block; e++) out[e] = d * q[e];
    }
  }
}

}  // namespace sparrow
