#include "arch.h"

namespace sparrow {

// Every row names each field, so a reader sees what differs between the families.
static const ArchSpec kArchs[] = {
    // Llama 1/2/3.x, Mistral, TinyLlama, llama2.c stories: rotation of adjacent pairs,
    // biases only where a file has them.
    {/*name*/ "llama", /*rope*/ RopeStyle::Normal, /*ffn_act*/ GluKind::SwiGLU,
     /*qkv_bias*/ Need::Optional, /*out_bias*/ Need::Optional, /*output*/ Need::Optional,
     /*rope_freqs*/ Need::Optional, /*qk_norm*/ Need::Absent},
    // Qwen2 / Qwen2.5: biases on Q, K and V; NeoX-style rotation of halves.
    {/*name*/ "qwen2", /*rope*/ RopeStyle::NeoX, /*ffn_act*/ GluKind::SwiGLU,
     /*qkv_bias*/ Need::Required, /*out_bias*/ Need::Optional, /*output*/ Need::Optional,
     /*rope_freqs*/ Need::Optional, /*qk_norm*/ Need::Absent},
    // Qwen3 (dense): no biases; an RMSNorm over each head of Q and of K (before RoPE),
    // NeoX-style rotation; head_dim from attention.key_length (n_head * head_dim may
    // differ from n_embd).
    {/*name*/ "qwen3", /*rope*/ RopeStyle::NeoX, /*ffn_act*/ GluKind::SwiGLU,
     /*qkv_bias*/ Need::Absent, /*out_bias*/ Need::Absent, /*output*/ Need::Optional,
     /*rope_freqs*/ Need::Absent, /*qk_norm*/ Need::Required},
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
