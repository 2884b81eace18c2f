#include "session.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "core/error.h"
#include "forward.h"

namespace sparrow {

namespace {
// Default context: the model's own, capped at 4096 (a 128K-context model would otherwise
// reserve gigabytes of KV cache for a session that may never need them).
constexpr int kDefaultContext = 4096;

int checked_context(const Model& m, int requested) {
  const int max = m.hp().n_ctx_train;
  if (requested == 0) return std::min(max, kDefaultContext);
  if (requested < 1 || requested > max)
    throw sparrow_error("ERR_INVALID_ARG", "contextSize must be between 1 and the model's context length " +
                                               std::to_string(max) + " (got " + std::to_string(requested) + ")");
  return requested;
}

// The sliding window of each layer (0 for the layers that see every position).
std::vector<int> layer_windows(const Model& m, bool full) {
  const HParams& hp = m.hp();
  std::vector<int> w(size_t(hp.n_layer), 0);
  if (!full)
    for (int l = 0; l < hp.n_layer; l++) w[size_t(l)] = hp.is_swa(l) ? hp.n_swa : 0;
  return w;
}
}  // namespace

Session::Session(std::shared_ptr<Model> model, const SessionOptions& opts)
    : model_(std::move(model)),
      kv_(model_->hp().n_layer, checked_context(*model_, opts.context_size), model_->hp().n_head_kv,
          model_->hp().head_dim, opts.kv_type, layer_windows(*model_, opts.full_window_cache), model_->batch_size()),
      flash_attn_(opts.flash_attn),
      embeddings_(opts.embeddings),
      sparsity_(opts.sparsity),
      sparsity_alloc_(opts.sparsity_alloc),
      sparse_prompt_(opts.sparse_prompt) {
  if (flash_attn_ && opts.kv_type != KVType::F16)
    throw sparrow_error("ERR_INVALID_ARG", "flashAttention needs kvCacheType 'f16'");
  if (!(sparsity_ >= 0.0f && sparsity_ <= 0.9f))
    throw sparrow_error("ERR_INVALID_ARG", "sparsity must be a number from 0 to 0.9 (got " + std::to_string(sparsity_) + ")");
  if (sparsity_ > 0) {
    const size_t want = size_t(model_->hp().n_layer) * kSparsitySites;
    if (sparsity_alloc_.size() != want)
      throw sparrow_error("ERR_INVALID_ARG", "the sparsity allocation must hold " + std::to_string(want) +
                                                 " fractions (layers x 4 sites), got " + std::to_string(sparsity_alloc_.size()));
    for (float f : sparsity_alloc_)
      if (!(f >= 0.0f && f <= 0.95f))
        throw sparrow_error("ERR_INVALID_ARG", "the sparsity allocation's fractions must be from 0 to 0.95");
  }
}

BatchSeq Session::batch_seq(int pos0, int n, float* logits, bool all_logits, bool decode) const {
  BatchSeq s{const_cast<KVCache*>(&kv_), pos0, n, logits, all_logits, flash_attn_, embeddings_};
  if (sparsity_ > 0 && (decode || sparse_prompt_)) {
    s.sparsity = sparsity_;
    s.sparsity_alloc = sparsity_alloc_.data();
  }
  return s;
}

std::vector<float> Session::evaluate(const int32_t* tokens, size_t n, bool all_logits, const std::atomic<bool>* cancel) {
  std::vector<float> out;
  evaluate_part(tokens, n, 0, n, all_logits, out, cancel);
  return out;
}

void Session::evaluate_part(const int32_t* tokens, size_t n, size_t done, size_t count, bool all_logits,
                            std::vector<float>& out, const std::atomic<bool>* cancel) {
  const int vocab = model_->hp().n_vocab;
  const size_t width = size_t(output_width());
  const size_t past = tokens_.size();
  if (done == 0) {  // the checks, once per evaluation
    if (n == 0) throw sparrow_error("ERR_INVALID_ARG", "tokens must not be empty");
    for (size_t i = 0; i < n; i++)
      if (tokens[i] < 0 || tokens[i] >= vocab)
        throw sparrow_error("ERR_INVALID_TOKEN", "tokens[" + std::to_string(i) + "] = " + std::to_string(tokens[i]) +
                                                     " is not a token id of this model (0.." + std::to_string(vocab - 1) + ")");
    if (past + n > size_t(kv_.n_ctx()))
      throw sparrow_error("ERR_CONTEXT_FULL", "the context is full: " + std::to_string(past) + " tokens + " +
                                                  std::to_string(n) + " new > contextSize " + std::to_string(kv_.n_ctx()));
    out.assign((all_logits ? n : 1) * width, 0.0f);
  }
  if (done + count > n || out.size() != (all_logits ? n : 1) * width)
    throw sparrow_error("ERR_INTERNAL", "evaluate_part: tokens [" + std::to_string(done) + ", " + std::to_string(done + count) +
                                            ") of " + std::to_string(n) + " do not continue an evaluation in progress");

  std::lock_guard<std::mutex> lock(model_->run_mutex());
  const size_t batch = size_t(model_->batch_size());
  for (size_t i = done; i < done + count; i += batch) {
    const size_t m = std::min(batch, done + count - i);
    const bool last = i + m == n;
    float* logits = all_logits ? out.data() + i * width : out.data();
    // Batches before the last compute no logits unless all are wanted.
    // A decode step is an evaluation of one token (n, not the part's size m: a prompt
    // split into parts stays a prompt).
    std::vector<float> discard;
    if (!(all_logits || last)) discard.resize(width);
    BatchSeq seq = batch_seq(int(past + i), int(m), discard.empty() ? logits : discard.data(), all_logits, n == 1);
    forward_batch(*model_, &seq, 1, tokens + i, cancel);
  }
  // Only at the end do the new positions count: an error before leaves the session unchanged.
  if (done + count == n) tokens_.insert(tokens_.end(), tokens, tokens + n);
}

void Session::truncate(size_t n) {
  if (n > tokens_.size())
    throw sparrow_error("ERR_INVALID_ARG", "truncate: n (" + std::to_string(n) + ") is larger than the number of tokens (" +
                                               std::to_string(tokens_.size()) + ")");
  // Sliding-window layers that no longer hold what position n would see: start again.
  if (!kv_.can_continue(int(n))) return reset();
  tokens_.resize(n);
}

void Session::shift(size_t keep, size_t drop) {
  const size_t n = tokens_.size();
  if (drop < 1 || keep > n || drop > n - keep)
    throw sparrow_error("ERR_INVALID_ARG", "shift: keep (" + std::to_string(keep) + ") + drop (" + std::to_string(drop) +
                                               ") must be within the " + std::to_string(n) + " tokens, with drop >= 1");
  const int from = int(keep + drop), to = int(keep), moved = int(n - keep - drop);
  // Sliding-window layers whose windows would reach kept tokens they no longer hold: the
  // session keeps what it can (the caller evaluates the rest again).
  if (!kv_.move(from, to, moved)) return truncate(keep);
  shift_keys(*model_, kv_, to, to + moved, -int(drop));
  tokens_.erase(tokens_.begin() + std::ptrdiff_t(keep), tokens_.begin() + std::ptrdiff_t(keep + drop));
}

// State layout (little-endian):
//   "SPKV" u32 version | u64 model fingerprint | u32 n_layer, n_ctx, kv_dim, kv type |
//   u32 n_tokens | n_tokens x i32 | per layer: u32 first, then per KV head: K rows
//   [first, n), V rows [first, n)
// (first: the first position the layer holds, 0 but for sliding-window layers; version 2
// had no `first`, every layer holding [0, n).)
namespace {
constexpr uint32_t kStateVersion = 3;
constexpr size_t kHeader = 4 + 4 + 8 + 4 * 4 + 4;

void put(std::vector<uint8_t>& b, const void* p, size_t n) {
  const uint8_t* c = static_cast<const uint8_t*>(p);
  b.insert(b.end(), c, c + n);
}
}  // namespace

std::vector<uint8_t> Session::save_state() const {
  const uint32_t n = uint32_t(tokens_.size());
  std::vector<uint8_t> b;
  b.reserve(kHeader + 4 * size_t(n) + size_t(2) * kv_.n_layer() * kv_.n_head_kv() * size_t(n) * kv_.row_bytes());
  put(b, "SPKV", 4);
  uint64_t fp = model_->fingerprint();
  uint32_t hdr[] = {kStateVersion};
  put(b, hdr, 4);
  put(b, &fp, 8);
  const uint32_t kv_dim = uint32_t(kv_.n_head_kv() * kv_.head_dim());
  uint32_t shape[] = {uint32_t(kv_.n_layer()), uint32_t(kv_.n_ctx()), kv_dim, uint32_t(kv_.type()), n};
  put(b, shape, sizeof(shape));
  put(b, tokens_.data(), 4 * size_t(n));
  for (int l = 0; l < kv_.n_layer(); l++) {
    const uint32_t first = std::min(n, uint32_t(kv_.first(l)));
    put(b, &first, 4);
    const size_t rows = size_t(n - first) * kv_.row_bytes();
    for (int h = 0; h < kv_.n_head_kv(); h++) {
      put(b, kv_.k_at(l, h, int(first)), rows);
      put(b, kv_.v_at(l, h, int(first)), rows);
    }
  }
  return b;
}

void Session::restore_state(const uint8_t* data, size_t size) {
  auto bad = [](const std::string& why) { return sparrow_error("ERR_BAD_STATE", "restore: " + why); };
  if (size < kHeader || std::memcmp(data, "SPKV", 4) != 0) throw bad("not a sparrow-llm session state");
  uint32_t version, shape[5];
  uint64_t fp;
  std::memcpy(&version, data + 4, 4);
  std::memcpy(&fp, data + 8, 8);
  std::memcpy(shape, data + 16, sizeof(shape));
  if (version != 2 && version != kStateVersion) throw bad("state version " + std::to_string(version) + " is not supported");
  if (fp != model_->fingerprint())
    throw sparrow_error("ERR_STATE_MISMATCH", "restore: the state was saved from a different model");
  if (shape[0] != uint32_t(kv_.n_layer()) || shape[2] != uint32_t(kv_.n_head_kv() * kv_.head_dim()))
    throw sparrow_error("ERR_STATE_MISMATCH", "restore: the state's cache shape differs from this model's");
  if (shape[3] != uint32_t(kv_.type()))
    throw sparrow_error("ERR_STATE_MISMATCH", std::string("restore: the state's kvCacheType differs (this session uses ") +
                                                  kv_type_name(kv_.type()) + ")");
  const uint32_t n = shape[4];
  if (n > uint32_t(kv_.n_ctx()))
    throw sparrow_error("ERR_CONTEXT_FULL", "restore: the state holds " + std::to_string(n) +
                                                " tokens, more than contextSize " + std::to_string(kv_.n_ctx()));
  const size_t rb = kv_.row_bytes(), heads = size_t(kv_.n_head_kv());
  // Walk the layers once to check the sizes (nothing is written before all is known good).
  std::vector<uint32_t> firsts(size_t(kv_.n_layer()), 0);
  size_t off = kHeader + 4 * size_t(n);
  if (off > size) throw bad("the state is truncated or has extra bytes");
  for (int l = 0; l < kv_.n_layer(); l++) {
    uint32_t first = 0;
    if (version >= 3) {
      if (off + 4 > size) throw bad("the state is truncated or has extra bytes");
      std::memcpy(&first, data + off, 4);
      off += 4;
      if (first > n) throw bad("layer " + std::to_string(l) + " starts after the last position");
    }
    firsts[size_t(l)] = first;
    const size_t bytes = 2 * heads * size_t(n - first) * rb;
    if (bytes > size - off) throw bad("the state is truncated or has extra bytes");
    off += bytes;
  }
  if (off != size) throw bad("the state is truncated or has extra bytes");
  // What each layer of this session must hold to go on at position n: from `need` (0 for
  // a layer that sees everything; for a windowed one, the start of its last window).
  std::vector<int> need(firsts.size(), 0);
  for (int l = 0; l < kv_.n_layer(); l++) {
    const int w = kv_.window(l);
    need[size_t(l)] = w > 0 ? std::max(0, int(n) + 1 - w) & ~3 : 0;
    const int seen = w > 0 ? std::max(0, int(n) + 1 - w) : 0;
    if (int(firsts[size_t(l)]) > seen)
      throw sparrow_error("ERR_STATE_MISMATCH", "restore: layer " + std::to_string(l) + " of the state holds only a sliding window (" +
                                                    "saved from a session without fullWindowCache), this session needs all its positions");
  }
  std::vector<int32_t> toks(n);
  std::memcpy(toks.data(), data + kHeader, 4 * size_t(n));
  for (int32_t t : toks)
    if (t < 0 || t >= model_->hp().n_vocab) throw bad("the state holds an invalid token id " + std::to_string(t));
  off = kHeader + 4 * size_t(n);
  for (int l = 0; l < kv_.n_layer(); l++) {
    if (version >= 3) off += 4;
    const uint32_t first = firsts[size_t(l)];
    const size_t rows_in = size_t(n - first) * rb;
    kv_.set_first(l, need[size_t(l)]);
    // Positions [max(first, need), n) come from the state; any before (alignment slots
    // a windowed layer only masks) are zeros.
    const int from = std::max(int(first), need[size_t(l)]);
    for (size_t h = 0; h < heads; h++) {
      for (int kv = 0; kv < 2; kv++) {
        const uint8_t* src = data + off + size_t(kv) * rows_in + size_t(from - int(first)) * rb;
        uint8_t* dst = kv == 0 ? kv_.k_at(l, int(h), need[size_t(l)]) : kv_.v_at(l, int(h), need[size_t(l)]);
        std::memset(dst, 0, size_t(from - need[size_t(l)]) * rb);
        std::memcpy(dst + size_t(from - need[size_t(l)]) * rb, src, size_t(int(n) - from) * rb);
      }
      off += 2 * rows_in;
    }
  }
  kv_.mark_changed();
  tokens_ = std::move(toks);
}

}  // namespace sparrow
