// Batched decoding: one token for each of several sessions of one model in a single
// forward pass. Decode is memory-bound (every step streams all the weights), so k
// sessions' steps done together cost about one step: the matrix products become GEMMs
// with n = k, while attention still runs per session over its own KV cache.
#include <algorithm>
#include <string>

#include "core/error.h"
#include "forward.h"
#include "session.h"

namespace sparrow {

void Session::decode_batch(Session* const* sessions, const int32_t* tokens, size_t n, float* const* logits) {
  if (n == 0) return;
  const std::shared_ptr<Model>& model = sessions[0]->model_;
  const int vocab = model->hp().n_vocab;
  for (size_t i = 0; i < n; i++) {
    Session& s = *sessions[i];
    if (s.model_ != model) throw sparrow_error("ERR_INVALID_ARG", "decode_batch: the sessions belong to different models");
    for (size_t j = 0; j < i; j++)
      if (sessions[j] == sessions[i]) throw sparrow_error("ERR_INVALID_ARG", "decode_batch: a session appears twice in one batch");
    if (tokens[i] < 0 || tokens[i] >= vocab)
      throw sparrow_error("ERR_INVALID_TOKEN", "token " + std::to_string(tokens[i]) + " is not a token id of this model (0.." +
                                                   std::to_string(vocab - 1) + ")");
    if (s.tokens_.size() + 1 > size_t(s.kv_.n_ctx()))
      throw sparrow_error("ERR_CONTEXT_FULL", "the context is full: " + std::to_string(s.tokens_.size()) +
                                                  " tokens + 1 new > contextSize " + std::to_string(s.kv_.n_ctx()));
  }
  std::vector<BatchSeq> seqs(n);
  for (size_t i = 0; i < n; i++) seqs[i] = sessions[i]->batch_seq(int(sessions[i]->tokens_.size()), 1, logits[i], false, true);
  {
    std::lock_guard<std::mutex> lock(model->run_mutex());
    forward_batch(*model, seqs.data(), int(n), tokens, nullptr);
  }
  // Only now do the new positions count: an error above leaves every session unchanged.
  for (size_t i = 0; i < n; i++) sessions[i]->tokens_.push_back(tokens[i]);
}

}  // namespace sparrow
