#include "arch.h"

namespace sparrow {

// Every row names each field, so a reader sees what differs between the families.
static const ArchSpec kArchs[] = {
    // Llama 1/2/3.x, Mistral, TinyLlama, llama2.c stories: rotation of adjacent pairs,
    // biases only where a file has them; Mixtral-style experts when expert_count > 0.
    {/*name*/ "llama", /*rope*/ RopeStyle::Normal, /*ffn_act*/ GluKind::SwiGLU,
     /*qkv_bias*/ Need::Optional, /*out_bias*/ Need::Optional, /*output*/ Need::Optional,
     /*rope_freqs*/ Need::Optional, /*qk_norm*/ Need::Absent, /*post_norms*/ Need::Absent,
     /*gemma_scaling*/ false, /*attn_softcap*/ false, /*final_softcap_default*/ 0, /*swa_pattern*/ 0, /*swa_default*/ 0,
     /*swa_rope_base*/ 0, /*q_prescale*/ false, /*attn_qkv*/ Need::Absent,
     /*ffn_up_gate*/ false, /*longrope*/ Need::Absent, /*moe*/ Need::Optional, /*attn_sinks*/ Need::Absent, /*ffn_norm*/ "ffn_norm",
     /*moe_bias*/ Need::Absent, /*moe_weight_softmax*/ false},
    // Qwen2 / Qwen2.5: biases on Q, K and V; NeoX-style rotation of halves.
    {/*name*/ "qwen2", /*rope*/ RopeStyle::NeoX, /*ffn_act*/ GluKind::SwiGLU,
     /*qkv_bias*/ Need::Required, /*out_bias*/ Need::Optional, /*output*/ Need::Optional,
     /*rope_freqs*/ Need::Optional, /*qk_norm*/ Need::Absent, /*post_norms*/ Need::Absent,
     /*gemma_scaling*/ false, /*attn_softcap*/ false, /*final_softcap_default*/ 0, /*swa_pattern*/ 0, /*swa_default*/ 0,
     /*swa_rope_base*/ 0, /*q_prescale*/ false, /*attn_qkv*/ Need::Absent,
     /*ffn_up_gate*/ false, /*longrope*/ Need::Absent, /*moe*/ Need::Absent, /*attn_sinks*/ Need::Absent, /*ffn_norm*/ "ffn_norm",
     /*moe_bias*/ Need::Absent, /*moe_weight_softmax*/ false},
    // Qwen3 (dense): no biases; an RMSNorm over each head of Q and of K (before RoPE),
    // NeoX-style rotation; head_dim from attention.key_length (n_head * head_dim may
    // differ from n_embd).
    {/*name*/ "qwen3", /*rope*/ RopeStyle::NeoX, /*ffn_act*/ GluKind::SwiGLU,
     /*qkv_bias*/ Need::Absent, /*out_bias*/ Need::Absent, /*output*/ Need::Optional,
     /*rope_freqs*/ Need::Absent, /*qk_norm*/ Need::Required, /*post_norms*/ Need::Absent,
     /*gemma_scaling*/ false, /*attn_softcap*/ false, /*final_softcap_default*/ 0, /*swa_pattern*/ 0, /*swa_default*/ 0,
     /*swa_rope_base*/ 0, /*q_prescale*/ false, /*attn_qkv*/ Need::Absent,
     /*ffn_up_gate*/ false, /*longrope*/ Need::Absent, /*moe*/ Need::Absent, /*attn_sinks*/ Need::Absent, /*ffn_norm*/ "ffn_norm",
     /*moe_bias*/ Need::Absent, /*moe_weight_softmax*/ false},
    // Gemma 2: embeddings scaled by sqrt(n_embd), GeGLU, RMSNorms before and after the
    // attention and feed-forward blocks (weights used as stored: the converter writes the
    // final 1 + w), Q pre-scaled by 1/sqrt(head_dim), attention logits and final logits
    // soft-capped, every other layer (the even ones) local with a sliding window (4096 by
    // default), NeoX rotation, output tied to the embedding (output.weight is not read).
    {/*name*/ "gemma2", /*rope*/ RopeStyle::NeoX, /*ffn_act*/ GluKind::GeGLU,
     /*qkv_bias*/ Need::Absent, /*out_bias*/ Need::Absent, /*output*/ Need::Absent,
     /*rope_freqs*/ Need::Absent, /*qk_norm*/ Need::Absent, /*post_norms*/ Need::Required,
     /*gemma_scaling*/ true, /*attn_softcap*/ true, /*final_softcap_default*/ 30, /*swa_pattern*/ 2,
     /*swa_default*/ 4096, /*swa_rope_base*/ 0, /*q_prescale*/ false, /*attn_qkv*/ Need::Absent,
     /*ffn_up_gate*/ false, /*longrope*/ Need::Absent, /*moe*/ Need::Absent, /*attn_sinks*/ Need::Absent, /*ffn_norm*/ "ffn_norm",
     /*moe_bias*/ Need::Absent, /*moe_weight_softmax*/ false},
    // Gemma 3 (text): as Gemma 2 plus per-head Q/K norms, without attention soft-capping
    // (final soft-capping only when the file asks for it); five local layers to one global
    // when attention.sliding_window is present, the local ones with RoPE base 10000
    // (rope.freq_base_swa) and the global ones with rope.freq_base; output.weight optional.
    {/*name*/ "gemma3", /*rope*/ RopeStyle::NeoX, /*ffn_act*/ GluKind::GeGLU,
     /*qkv_bias*/ Need::Absent, /*out_bias*/ Need::Absent, /*output*/ Need::Optional,
     /*rope_freqs*/ Need::Absent, /*qk_norm*/ Need::Required, /*post_norms*/ Need::Required,
     /*gemma_scaling*/ true, /*attn_softcap*/ false, /*final_softcap_default*/ 0, /*swa_pattern*/ 6,
     /*swa_default*/ 0, /*swa_rope_base*/ 10000, /*q_prescale*/ false, /*attn_qkv*/ Need::Absent,
     /*ffn_up_gate*/ false, /*longrope*/ Need::Absent, /*moe*/ Need::Absent, /*attn_sinks*/ Need::Absent, /*ffn_norm*/ "ffn_norm",
     /*moe_bias*/ Need::Absent, /*moe_weight_softmax*/ false},
    // Phi-3 / Phi-3.5: Q, K, V in one attn_qkv matrix, gate and up in one ffn_up, SwiGLU,
    // NeoX rotation, Q pre-scaled by 1/sqrt(head_dim); LongRoPE factors (short, or long for
    // contexts beyond rope.scaling.original_context_length) when the file has them.
    {/*name*/ "phi3", /*rope*/ RopeStyle::NeoX, /*ffn_act*/ GluKind::SwiGLU,
     /*qkv_bias*/ Need::Absent, /*out_bias*/ Need::Absent, /*output*/ Need::Optional,
     /*rope_freqs*/ Need::Absent, /*qk_norm*/ Need::Absent, /*post_norms*/ Need::Absent,
     /*gemma_scaling*/ false, /*attn_softcap*/ false, /*final_softcap_default*/ 0, /*swa_pattern*/ 0, /*swa_default*/ 0,
     /*swa_rope_base*/ 0, /*q_prescale*/ true, /*attn_qkv*/ Need::Optional, /*ffn_up_gate*/ true,
     /*longrope*/ Need::Optional, /*moe*/ Need::Absent, /*attn_sinks*/ Need::Absent, /*ffn_norm*/ "ffn_norm",
     /*moe_bias*/ Need::Absent, /*moe_weight_softmax*/ false},
    // Qwen3-MoE: Qwen3's attention (Q/K norms, NeoX) with a mixture-of-experts FFN in every
    // layer (expert_feed_forward_length wide experts, expert_used_count of expert_count).
    {/*name*/ "qwen3moe", /*rope*/ RopeStyle::NeoX, /*ffn_act*/ GluKind::SwiGLU,
     /*qkv_bias*/ Need::Absent, /*out_bias*/ Need::Absent, /*output*/ Need::Optional,
     /*rope_freqs*/ Need::Absent, /*qk_norm*/ Need::Required, /*post_norms*/ Need::Absent,
     /*gemma_scaling*/ false, /*attn_softcap*/ false, /*final_softcap_default*/ 0, /*swa_pattern*/ 0, /*swa_default*/ 0,
     /*swa_rope_base*/ 0, /*q_prescale*/ false, /*attn_qkv*/ Need::Absent, /*ffn_up_gate*/ false,
     /*longrope*/ Need::Absent, /*moe*/ Need::Required, /*attn_sinks*/ Need::Absent, /*ffn_norm*/ "ffn_norm",
     /*moe_bias*/ Need::Absent, /*moe_weight_softmax*/ false},
    // gpt-oss (llama.cpp's OPENAI_MOE): Q/K/V and output biases, one learned attention sink
    // per head, every other layer (the even ones) local with a sliding window
    // (attention.sliding_window, 128), NeoX rotation with YaRN scaling, the pre-FFN norm
    // named post_attention_norm, a mixture of experts in every layer with router and expert
    // biases, softmax-weighted top-k gating and the clamped SwiGLU (swiglu_oai).
    {/*name*/ "gpt-oss", /*rope*/ RopeStyle::NeoX, /*ffn_act*/ GluKind::SwiGLUOAI,
     /*qkv_bias*/ Need::Optional, /*out_bias*/ Need::Required, /*output*/ Need::Required,
     /*rope_freqs*/ Need::Absent, /*qk_norm*/ Need::Absent, /*post_norms*/ Need::Absent,
     /*gemma_scaling*/ false, /*attn_softcap*/ false, /*final_softcap_default*/ 0, /*swa_pattern*/ 2, /*swa_default*/ 0,
     /*swa_rope_base*/ 0, /*q_prescale*/ false, /*attn_qkv*/ Need::Absent, /*ffn_up_gate*/ false,
     /*longrope*/ Need::Absent, /*moe*/ Need::Required, /*attn_sinks*/ Need::Required,
     /*ffn_norm*/ "post_attention_norm", /*moe_bias*/ Need::Required, /*moe_weight_softmax*/ true},
};

const ArchSpec* find_arch(const std::string& name) {
  for (const ArchSpec& a : kArchs)
    if (name == a.name) return &a;
  return nullptr;
}

std::string supported_archs() {
  std::string s;
  for (const ArchSpec& a : kArchs) s += (s.empty() ? "" : ", ") + std::string(a.name);
  return s;
}

}  // namespace sparrow
