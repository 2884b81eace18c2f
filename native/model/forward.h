// The forward pass of every supported architecture, over a batch of tokens.
#pragma once
#include <atomic>
#include <cstdint>

#include "model.h"
#include "runtime/kv_cache.h"

namespace sparrow {

// Runs tokens[0..n) at positions [pos0, pos0 + n): their keys and values are written to
// `kv` at those positions, attention sees positions [0, pos + 1) of the cache. Writes the
// logits (n_vocab floats per row) of every token to `logits` when all_logits, else of the
// last one only. Throws ERR_CANCELLED (between layers) once *cancel becomes true.
// The caller holds model.run_mutex() and guarantees pos0 + n <= kv.n_ctx().
void forward(const Model& model, KVCache& kv, const int32_t* tokens, int n, int pos0, float* logits,
             bool all_logits, const std::atomic<bool>* cancel);

}  // namespace sparrow
