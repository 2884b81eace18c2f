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
// flash_attn: attention with llama.cpp's flash-attention numerics (see BatchSeq).
void forward(const Model& model, KVCache& kv, const int32_t* tokens, int n, int pos0, float* logits,
             bool all_logits, const std::atomic<bool>* cancel, bool flash_attn = false, bool embeddings = false);

// One sequence of a batch: `n` consecutive tokens of one session, at positions
// [pos0, pos0 + n) of its cache `kv`. The sequences of a batch take the batch's tokens in
// order (the first seqs[0].n tokens are the first sequence's, and so on).
struct BatchSeq {
  KVCache* kv;
  int pos0;
  int n;
  float* logits;    // n_vocab floats (its last token), or n * n_vocab when all_logits
  bool all_logits;
  // Attention computed as llama.cpp's CPU flash attention computes it (one pass over the
  // positions with an online softmax, values summed in f16) instead of as its default
  // path (Q K^T, softmax, then P V). Results differ slightly (the f16 sums); this mode
  // reproduces llama.cpp run with flash attention on, its default. Needs an F16 cache.
  bool flash_attn = false;
  // Output the final normed hidden state (n_embd floats per row, the embeddings llama.cpp
  // returns) in `logits` instead of the logits.
  bool embeddings = false;
  // Activation sparsity of these tokens (the session's level for a decode step, 0 for
  // prompt tokens): > 0 zeroes, at every site of every layer, the share sparsity_alloc
  // gives of each token's smallest-magnitude input channels (Backend::sparsify).
  // 0: the exact dense pass. Decided per token, so a batch may mix levels.
  float sparsity = 0;
  // n_layer * kSparsitySites fractions (model.h), used when sparsity > 0.
  const float* sparsity_alloc = nullptr;
};

// The forward pass of a batch whose tokens may belong to several sessions (distinct
// caches): the matrix products run over all tokens at once (one pass over the weights),
// attention runs per sequence over its own cache. forward() is this with one sequence.
// The caller holds model.run_mutex() and guarantees pos0 + n <= kv->n_ctx() for each.
void forward_batch(const Model& model, const BatchSeq* seqs, int n_seq, const int32_t* tokens,
                   const std::atomic<bool>* cancel);

// Re-rotates the cached keys of positions [p0, p1) as if each were `delta` positions
// further (RoPE angles add up): what a context shift does to the keys it moves, as
// llama.cpp's K-shift does. Values carry no position and stay as they are.
void shift_keys(const Model& model, KVCache& kv, int p0, int p1, int delta);

}  // namespace sparrow
