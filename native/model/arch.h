// The architecture table: one row per supported architecture (general.architecture),
// holding everything that differs between them as data: flags the forward pass reads and
// which optional tensors a file of that architecture must, may or must not carry. The
// forward pass (forward.cpp) and the loader (model.cpp) read the row; a new architecture
// is a new row plus, where it needs one, a new backend operation.
#pragma once
#include <string>

#include "backend/backend.h"

namespace sparrow {

// Whether a tensor is part of an architecture.
enum class Need : unsigned char {
  Absent,    // not read (a file that has it is still accepted)
  Optional,  // used when the file has it
  Required,  // ERR_MISSING_TENSOR when the file lacks it
};

struct ArchSpec {
  const char* name;   // general.architecture, and the prefix of its metadata keys
  RopeStyle rope;     // how the rotated pairs of a head are chosen
  GluKind ffn_act;    // the gated activation of the feed-forward block
  // Optional tensors.
  Need qkv_bias;      // blk.N.attn_{q,k,v}.bias
  Need out_bias;      // blk.N.attn_output.bias
  Need output;        // output.weight (absent: tied to token_embd.weight)
  Need rope_freqs;    // rope_freqs.weight (frequency factors)
  Need qk_norm;       // blk.N.attn_{q,k}_norm.weight: RMSNorm of each Q and K head (head_dim weights)
  // Gemma: blk.N.post_attention_norm / post_ffw_norm, an RMSNorm of each block's output
  // before it joins the residual stream.
  Need post_norms;
  // Gemma: token embeddings times sqrt(n_embd); Q multiplied by HParams::attn_scale
  // before attention (which then scales its logits by 1).
  bool gemma_scaling;
  // Attention logit soft-capping (<arch>.attn_logit_softcapping, default 50) on every layer.
  bool attn_softcap;
  // Final-logit soft-capping when <arch>.final_logit_softcapping is absent (0: none).
  float final_softcap_default;
  // Sliding-window layers: layer l is local when l % pattern < pattern - 1 (llama.cpp's
  // set_swa_pattern; 0: none). Its window is <arch>.attention.sliding_window
  // (swa_default when the key is absent; 0 there: no sliding window without the key).
  int swa_pattern;
  int swa_default;
  // RoPE base of the local layers when <arch>.rope.freq_base_swa is absent (0: the global base).
  float swa_rope_base;
  // Phi-3: Q multiplied by 1/sqrt(head_dim) before attention (which then scales by 1).
  bool q_prescale;
  // Phi-3: blk.N.attn_qkv.weight, Q, K and V stacked in one matrix (used when present,
  // else attn_q/k/v); split into its row ranges at load (each output row is its own
  // product, so the split changes no value).
  Need attn_qkv;
  // Phi-3: blk.N.ffn_up.weight holds the gate rows then the up rows (2 n_ff rows), no
  // ffn_gate; split at load likewise.
  bool ffn_up_gate;
  // Phi-3 LongRoPE: rope_factors_short / rope_factors_long.weight (rope_dim/2 each).
  Need longrope;
  // Mixture of experts: blk.N.ffn_gate_inp (router) and ffn_{gate,up,down}_exps (3-D, one
  // matrix per expert) in place of the dense FFN, when <arch>.expert_count > 0 (Optional)
  // or always (Required); softmax gating, the chosen experts' weights renormalized.
  Need moe;
  // gpt-oss: blk.N.attn_sinks.weight, one learned logit per head that joins each head's
  // softmax (AttnParams::sinks).
  Need attn_sinks;
  // The name of the norm before the feed-forward block (blk.N.<ffn_norm>.weight):
  // "ffn_norm", or gpt-oss's "post_attention_norm".
  const char* ffn_norm;
  // gpt-oss: biases of the router (ffn_gate_inp.bias, n_expert) and of every expert
  // (ffn_{gate,up,down}_exps.bias, [rows, n_expert]).
  Need moe_bias;
  // Expert weights: the softmax of the chosen experts' router logits (llama.cpp's
  // SOFTMAX_WEIGHT gating, gpt-oss) instead of the softmax over all experts renormalized.
  bool moe_weight_softmax;
};

const ArchSpec* find_arch(const std::string& name);  // nullptr when unknown
std::string supported_archs();                       // "llama, qwen2, qwen3, ..."

}  // namespace sparrow
