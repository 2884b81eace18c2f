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
}  // namespace

Session::Session(std::shared_ptr<Model> model, const SessionOptions& opts)
    : model_(std::move(model)),
      kv_(model_->hp().n_layer, checked_context(*model_, opts.context_size), model_->hp().n_head_kv,
          model_->hp().head_dim, opts.kv_type),
      flash_attn_(opts.flash_attn),
      embeddings_(opts.embeddings) {
  if (flash_attn_ && opts.kv_type != KVType::F16)
    throw sparrow_error("ERR_INVALID_ARG", "flashAttention needs kvCacheType 'f16'");
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
    if (all_logits || last) {
      forward(*model_, kv_, tokens + i, int(m), int(past + i), logits, all_logits, cancel, flash_attn_, embeddings_);
    } else {
      std::vector<float> discard(width);
      forward(*model_, kv_, tokens + i, int(m), int(past + i), discard.data(), false, cancel, flash_attn_, embeddings_);
    }
  }
  // Only at the end do the new positions count: an error before leaves the session unchanged.
  if (done + count == n) tokens_.insert(tokens_.end(), tokens, tokens + n);
}

void Session::truncate(size_t n) {
  if (n > tokens_.size())
    throw sparrow_error("ERR_INVALID_ARG", "truncate: n (" + std::to_string(n) + ") is larger than the number of tokens (" +
                                               std::to_string(tokens_.size()) + ")");
  tokens_.resize(n);
}

void Session::shift(size_t keep, size_t drop) {
  const size_t n = tokens_.size();
  if (drop < 1 || keep > n || drop > n - keep)
    throw sparrow_error("ERR_INVALID_ARG", "shift: keep (" + std::to_string(keep) + ") + drop (" + std::to_string(drop) +
                                               ") must be within the " + std::to_string(n) + " tokens, with drop >= 1");
  const int from = int(keep + drop), to = int(keep), moved = int(n - keep - drop);
  kv_.move(from, to, moved);
  shift_keys(*model_, kv_, to, to + moved, -int(drop));
  tokens_.erase(tokens_.begin() + std::ptrdiff_t(keep), tokens_.begin() + std::ptrdiff_t(keep + drop));
}

// State layout (little-endian):
//   "SPKV" u32 version | u64 model fingerprint | u32 n_layer, n_ctx, kv_dim, kv type |
//   u32 n_tokens | n_tokens x i32 | per layer and KV head: K rows [0, n), V rows [0, n)
namespace {
constexpr uint32_t kStateVersion = 2;
constexpr size_t kHeader = 4 + 4 + 8 + 4 * 4 + 4;

void put(std::vector<uint8_t>& b, const void* p, size_t n) {
  const uint8_t* c = static_cast<const uint8_t*>(p);
  b.insert(b.end(), c, c + n);
}
}  // namespace

std::vector<uint8_t> Session::save_state() const {
  const uint32_t n = uint32_t(tokens_.size());
  std::vector<uint8_t> b;
  const size_t rows = size_t(n) * kv_.row_bytes();
  b.reserve(kHeader + 4 * size_t(n) + size_t(2) * kv_.n_layer() * kv_.n_head_kv() * rows);
  put(b, "SPKV", 4);
  uint64_t fp = model_->fingerprint();
  uint32_t hdr[] = {kStateVersion};
  put(b, hdr, 4);
  put(b, &fp, 8);
  const uint32_t kv_dim = uint32_t(kv_.n_head_kv() * kv_.head_dim());
  uint32_t shape[] = {uint32_t(kv_.n_layer()), uint32_t(kv_.n_ctx()), kv_dim, uint32_t(kv_.type()), n};
  put(b, shape, sizeof(shape));
  put(b, tokens_.data(), 4 * size_t(n));
  for (int l = 0; l < kv_.n_layer(); l++)
    for (int h = 0; h < kv_.n_head_kv(); h++) {
      put(b, kv_.k_head(l, h), rows);
      put(b, kv_.v_head(l, h), rows);
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
  if (version != kStateVersion) throw bad("state version " + std::to_string(version) + " is not supported");
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
  const size_t rows = size_t(n) * kv_.row_bytes();
  const size_t heads = size_t(kv_.n_layer()) * kv_.n_head_kv();
  if (size != kHeader + 4 * size_t(n) + 2 * heads * rows) throw bad("the state is truncated or has extra bytes");
  std::vector<int32_t> toks(n);
  std::memcpy(toks.data(), data + kHeader, 4 * size_t(n));
  for (int32_t t : toks)
    if (t < 0 || t >= model_->hp().n_vocab) throw bad("the state holds an invalid token id " + std::to_string(t));
  const uint8_t* p = data + kHeader + 4 * size_t(n);
  for (int l = 0; l < kv_.n_layer(); l++)
    for (int h = 0; h < kv_.n_head_kv(); h++) {
      std::memcpy(kv_.k_head(l, h), p, rows);
      std::memcpy(kv_.v_head(l, h), p + rows, rows);
      p += 2 * rows;
    }
  kv_.mark_changed();
  tokens_ = std::move(toks);
}

}  // namespace sparrow
