// A session: one sequence of tokens and its KV cache, evaluated on a shared Model.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "forward.h"
#include "model.h"
#include "runtime/kv_cache.h"

namespace sparrow {

struct SessionOptions {
  int context_size = 0;       // 0: the model's own context length, at most 4096
  KVType kv_type = KVType::F16;
  bool flash_attn = false;  // llama.cpp's flash-attention numerics (forward.h, BatchSeq)
  bool embeddings = false;  // evaluations return the final normed hidden state, not logits
  // Sliding-window layers keep every position (not only their window: see KVCache).
  bool full_window_cache = false;
  // Activation sparsity of decode steps (single-token evaluations): the level (0..0.9,
  // the share of the layer matrices' weight bytes skipped) and its allocation,
  // n_layer * kSparsitySites fractions of zeroed input channels (model.h). Level 0: dense.
  float sparsity = 0;
  std::vector<float> sparsity_alloc;
  // Apply the sparsity to every evaluated token, prompts included (quality measurements:
  // a perplexity run scores each token as if it had been decoded sparsely).
  bool sparse_prompt = false;
};

class Session {
 public:
  // Throws ERR_INVALID_ARG when context_size exceeds the model's context length.
  Session(std::shared_ptr<Model> model, const SessionOptions& opts);

  const Model& model() const { return *model_; }
  int context_size() const { return kv_.n_ctx(); }
  float sparsity() const { return sparsity_; }
  // The BatchSeq of `n` tokens of this session at position pos0, with its sparsity when
  // they are a decode step (an evaluation of one token) or sparse_prompt is set.
  BatchSeq batch_seq(int pos0, int n, float* logits, bool all_logits, bool decode) const;
  const KVCache& kv() const { return kv_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }
  // Floats per returned row: n_vocab (logits), or n_embd for a session that outputs embeddings.
  int output_width() const { return embeddings_ ? model_->hp().n_embd : model_->hp().n_vocab; }

  // Appends tokens to the cache in batches of the model's batch size and returns the
  // logits of the last one (n_vocab floats), or of every new token (n * n_vocab) when
  // all_logits. All or nothing: on any error (ERR_CONTEXT_FULL, ERR_INVALID_TOKEN,
  // ERR_CANCELLED, ...) the session is left as it was.
  std::vector<float> evaluate(const int32_t* tokens, size_t n, bool all_logits, const std::atomic<bool>* cancel);
  // evaluate() in parts, so that a long prompt can yield the model to other sessions'
  // decode steps: evaluates tokens [done, done + count) of the n-token evaluation `tokens`
  // (positions after the committed tokens), into `out` (sized by the call with done = 0,
  // which also does the checks). The n tokens are committed by the call that reaches n;
  // until then, and after an error, the session is as it was. Nothing else may change
  // the session between the parts.
  void evaluate_part(const int32_t* tokens, size_t n, size_t done, size_t count, bool all_logits, std::vector<float>& out,
                     const std::atomic<bool>* cancel);

  // Decodes one token on each of n distinct sessions of the same model in one forward
  // pass (see batch.cpp): tokens[i] is appended to sessions[i] and its logits (its
  // output_width() floats) written to logits[i]. Checked like evaluate(), all or nothing for the batch.
  static void decode_batch(Session* const* sessions, const int32_t* tokens, size_t n, float* const* logits);

  void reset() {
    tokens_.clear();
    kv_.clear();
  }
  // Keeps the first n tokens (n <= tokens().size(), else ERR_INVALID_ARG).
  void truncate(size_t n);
  // Context shift: drops tokens [keep, keep + drop); the later ones move down by `drop`
  // positions, their cached keys re-rotated for their new positions (as llama.cpp's
  // K-shift), so the session goes on without evaluating anything again. ERR_INVALID_ARG
  // unless drop >= 1 and keep + drop <= tokens().size().
  void shift(size_t keep, size_t drop);

  // The tokens and their cached keys/values, bound to this model (fingerprint, shapes,
  // cache type). restore_state throws ERR_STATE_MISMATCH / ERR_BAD_STATE when they differ.
  std::vector<uint8_t> save_state() const;
  void restore_state(const uint8_t* data, size_t size);

 private:
  std::shared_ptr<Model> model_;
  KVCache kv_;
  bool flash_attn_ = false;
  bool embeddings_ = false;
  float sparsity_ = 0;
  std::vector<float> sparsity_alloc_;
  bool sparse_prompt_ = false;
  std::vector<int32_t> tokens_;
};

}  // namespace sparrow
