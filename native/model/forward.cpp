// The transformer forward pass, one for every architecture of the table (arch.h): a
// sequence of backend operations (backend/backend.h) over the whole batch. It names no
// ISA, thread or host buffer; the architecture's row decides the variations.
#include "forward.h"

#include <cmath>
#include <vector>

#include "core/error.h"

namespace sparrow {

namespace {

// The RoPE of layer `layer` (local sliding-window layers may have their own base; -1: the
// global layers').
RopeParams rope_params(const Model& model, int layer = -1) {
  const HParams& hp = model.hp();
  RopeParams r;
  r.head_dim = hp.head_dim;
  r.rope_dim = hp.rope_dim;
  r.base = layer >= 0 && hp.is_swa(layer) ? hp.rope_base_swa : hp.rope_base;
  r.freq_scale = hp.rope_freq_scale;
  r.style = model.arch().rope;
  r.factors = &model.rope_freq_factors();
  r.factors_long = &model.rope_factors_long();
  r.long_above = hp.n_ctx_orig;
  r.attn_factor = hp.rope_attn_factor;
  r.ext_factor = hp.yarn_ext_factor;
  r.yarn_orig_ctx = hp.n_ctx_orig;
  r.beta_fast = hp.yarn_beta_fast;
  r.beta_slow = hp.yarn_beta_slow;
  return r;
}

AttnParams attn_params(const HParams& hp, int layer) {
  AttnParams a;
  a.n_head = hp.n_head;
  a.n_head_kv = hp.n_head_kv;
  a.head_dim = hp.head_dim;
  // With a pre-scaled Q (Gemma) the logits are used as they come.
  a.scale = hp.attn_scale > 0 ? 1.0f : 1.0f / std::sqrt(float(hp.head_dim));
  a.softcap = hp.attn_softcap;
  a.window = hp.is_swa(layer) ? hp.n_swa : 0;
  return a;
}

// The rows whose output a batch returns (every token of a sequence with all_logits, else
// its last one) and where each goes: the caller's buffers, one after the other. Only the
// sequences whose `embeddings` flag equals `embeddings`; `width` floats a row.
void output_rows(const BatchSeq* seqs, int n_seq, bool embeddings, size_t width, std::vector<int>& rows,
                 std::vector<float*>& dest) {
  for (int i = 0, t0 = 0; i < n_seq; t0 += seqs[i].n, i++) {
    if (seqs[i].embeddings != embeddings) continue;
    const int first = seqs[i].all_logits ? 0 : seqs[i].n - 1;
    for (int j = first; j < seqs[i].n; j++) {
      rows.push_back(t0 + j);
      dest.push_back(seqs[i].logits + size_t(j - first) * width);
    }
  }
}

// The fraction of `site`'s input channels each row of the batch zeroes in layer `layer`
// (0 for the rows of sequences without sparsity). False when no row is sparsified: the
// site is then left exactly as the dense pass has it.
bool site_fractions(const BatchSeq* seqs, int n_seq, int layer, int site, std::vector<float>& frac) {
  frac.clear();
  bool any = false;
  for (int i = 0; i < n_seq; i++) {
    const float f = seqs[i].sparsity > 0 && seqs[i].sparsity_alloc
                        ? seqs[i].sparsity_alloc[size_t(layer) * kSparsitySites + size_t(site)]
                        : 0.0f;
    any = any || f > 0;
    frac.insert(frac.end(), size_t(seqs[i].n), f);
  }
  return any;
}

}  // namespace

void shift_keys(const Model& model, KVCache& kv, int p0, int p1, int delta) {
  // Each layer's keys turn with that layer's RoPE (Gemma 3: the local layers' own base).
  std::vector<RopeParams> layers;
  for (int l = 0; l < model.hp().n_layer; l++) layers.push_back(rope_params(model, l));
  model.backend().rope_cache(kv, p0, p1, delta, layers);
}

void forward(const Model& model, KVCache& kv, const int32_t* tokens, int n, int pos0, float* logits, bool all_logits,
             const std::atomic<bool>* cancel, bool flash_attn, bool embeddings) {
  const BatchSeq seq{&kv, pos0, n, logits, all_logits, flash_attn, embeddings};
  forward_batch(model, &seq, 1, tokens, cancel);
}

void forward_batch(const Model& model, const BatchSeq* seqs, int n_seq, const int32_t* tokens,
                   const std::atomic<bool>* cancel) {
  const HParams& hp = model.hp();
  const ArchSpec& arch = model.arch();
  Backend& be = model.backend();

  // The batch, and which sequences take which attention route. Each cache's windowed
  // (sliding-window) layers make room for the new positions first.
  std::vector<SeqSpan> spans;
  std::vector<int> by_default, by_flash;
  bool sparse = false;  // some sequence is sparsified (else the sites are never touched)
  for (int i = 0; i < n_seq; i++) {
    seqs[i].kv->prepare(seqs[i].pos0, seqs[i].n);
    spans.push_back({seqs[i].kv, seqs[i].pos0, seqs[i].n, seqs[i].flash_attn});
    (seqs[i].flash_attn ? by_flash : by_default).push_back(i);
    sparse = sparse || (seqs[i].sparsity > 0 && seqs[i].sparsity_alloc);
  }
  be.begin(spans.data(), n_seq);
  // Activation sparsity at a site: zero each row's smallest inputs (BatchSeq::sparsity).
  std::vector<float> frac;
  auto sparsify = [&](Act a, int layer, int site) {
    if (sparse && site_fractions(seqs, n_seq, layer, site, frac)) be.sparsify(a, frac);
  };

  Act x = be.alloc(hp.n_embd), xb = be.alloc(hp.n_embd);
  Act q = be.alloc(hp.q_dim()), k = be.alloc(hp.kv_dim()), v = be.alloc(hp.kv_dim()), att = be.alloc(hp.q_dim());
  Act gate = be.alloc(hp.n_ff), up = be.alloc(hp.n_ff);
  Act moe_out = hp.n_expert > 0 ? be.alloc(hp.n_embd) : Act{};

  be.embed(model.tok_embd(), tokens, x);
  if (arch.gemma_scaling) be.scale(x, std::sqrt(float(hp.n_embd)));
  for (int l = 0; l < hp.n_layer; l++) {
    if (cancel && cancel->load(std::memory_order_relaxed))
      throw sparrow_error("ERR_CANCELLED", "evaluation was cancelled (the session was disposed)");
    const LayerWeights& w = model.layers()[size_t(l)];
    const RopeParams rope = rope_params(model, l);
    AttnParams attn = attn_params(hp, l);
    if (!w.attn_sinks.empty()) attn.sinks = &w.attn_sinks;

    // Attention block: x += Wo attention(rope(Wq n), rope(Wk n), Wv n), n = norm(x)
    // (with the qk_norm architectures, Q and K normed per head before the rotation; with
    // post-norms, the block's output normed before it is added).
    be.rmsnorm(x, w.attn_norm, hp.rms_eps, xb);
    sparsify(xb, l, kSiteQKV);
    be.matmul({{w.wq.get(), xb, q}, {w.wk.get(), xb, k}, {w.wv.get(), xb, v}});
    be.add_bias(q, w.bq);
    be.add_bias(k, w.bk);
    be.add_bias(v, w.bv);
    if (!w.q_norm.empty()) be.rmsnorm_heads(q, hp.head_dim, w.q_norm, hp.rms_eps);
    if (!w.k_norm.empty()) be.rmsnorm_heads(k, hp.head_dim, w.k_norm, hp.rms_eps);
    be.rope(q, hp.n_head, rope);
    be.rope(k, hp.n_head_kv, rope);
    if (hp.attn_scale > 0) be.scale(q, hp.attn_scale);
    be.kv_store(l, k, v);
    be.attention(l, q, att, attn, by_default);
    be.attention_flash(l, q, att, attn, by_flash);
    sparsify(att, l, kSiteO);
    be.matmul({{w.wo.get(), att, xb}});
    be.add_bias(xb, w.bo);
    if (!w.attn_post_norm.empty()) be.rmsnorm(xb, w.attn_post_norm, hp.rms_eps, xb);
    be.add(x, xb);

    // Feed-forward block: x += W_down act(W_gate n, W_up n), n = norm(x).
    // (Mixture of experts: the routed experts' FFNs, weighted.)
    be.rmsnorm(x, w.ffn_norm, hp.rms_eps, xb);
    if (w.moe) {
      be.moe(xb, w.moe->ffn, moe_out);
      be.add(x, moe_out);
      continue;
    }
    sparsify(xb, l, kSiteGateUp);
    be.matmul({{w.w_gate.get(), xb, gate}, {w.w_up.get(), xb, up}});
    be.glu(arch.ffn_act, gate, up, gate);
    sparsify(gate, l, kSiteDown);
    be.matmul({{w.w_down.get(), gate, xb}});
    if (!w.ffn_post_norm.empty()) be.rmsnorm(xb, w.ffn_post_norm, hp.rms_eps, xb);
    be.add(x, xb);
  }

  // Final norm and the logits of the rows asked for (the final normed hidden state for
  // sequences that output embeddings): the read-back of the pass.
  std::vector<int> rows;
  std::vector<float*> dest;
  output_rows(seqs, n_seq, false, size_t(hp.n_vocab), rows, dest);
  if (!rows.empty()) be.read_logits(x, model.output_norm(), hp.rms_eps, model.output(), rows, dest.data(), hp.final_softcap);
  rows.clear();
  dest.clear();
  output_rows(seqs, n_seq, true, size_t(hp.n_embd), rows, dest);
  if (!rows.empty()) be.read_hidden(x, model.output_norm(), hp.rms_eps, rows, dest.data());
}

}  // namespace sparrow
