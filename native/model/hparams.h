// The hyper-parameters of a model, read and checked from its GGUF metadata
// (<arch>.embedding_length, <arch>.attention.head_count, ...).
#pragma once
#include <string>
#include <vector>

namespace sparrow {

class GGUFFile;
struct ArchSpec;

struct HParams {
  int n_vocab = 0, n_embd = 0, n_layer = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0;
  int n_ctx_train = 0;
  int rope_dim = 0;            // leading dims of each head that are rotated
  float rope_base = 10000.0f;
  float rope_freq_scale = 1.0f;  // linear scaling: positions are multiplied by this
  std::string rope_scaling;      // "", "none", "linear", "llama3", "yarn" or "longrope"
  float rms_eps = 1e-5f;
  // Gemma-style extras (hparams.cpp reads them for the architectures whose row asks).
  float attn_scale = 0.0f;     // > 0: Q is multiplied by this before attention, which then scales by 1
  float attn_softcap = 0.0f;   // > 0: attention logits soft-capped
  float final_softcap = 0.0f;  // > 0: final logits soft-capped
  int n_swa = 0;               // sliding window of the local layers (0: none)
  int swa_pattern = 0;         // layer l is local when l % swa_pattern < swa_pattern - 1
  float rope_base_swa = 10000.0f;  // RoPE base of the local layers
  float rope_attn_factor = 1.0f;   // rope.scaling.attn_factor (YaRN: times llama.cpp's YaRN factor): multiplies RoPE's cos and sin
  int n_ctx_orig = 0;              // rope.scaling.original_context_length (LongRoPE: long factors beyond it; YaRN)
  float yarn_ext_factor = 0.0f;    // 1 with rope.scaling.type "yarn" (see RopeParams)
  float yarn_beta_fast = 32.0f, yarn_beta_slow = 1.0f;
  int n_expert = 0, n_expert_used = 0, n_ff_exp = 0;  // mixture of experts (0: a dense FFN)
  bool is_swa(int layer) const { return n_swa > 0 && swa_pattern > 0 && layer % swa_pattern < swa_pattern - 1; }
  int q_dim() const { return n_head * head_dim; }
  int kv_dim() const { return n_head_kv * head_dim; }
};

// Everything but n_vocab (the embedding's row count, known to the loader). Throws
// ERR_BAD_MODEL naming the key for a missing or out-of-range value, and
// ERR_UNSUPPORTED_ROPE for an unknown rope.scaling.type.
// The architecture's row decides which extra keys are read (soft-capping, sliding window).
HParams read_hparams(const GGUFFile& f, const ArchSpec& arch);

// Llama-3.1-style frequency factors computed from the rope.scaling.* keys, for files that
// carry the keys but no rope_freqs.weight tensor: rope_dim/2 divisors of the frequencies.
std::vector<float> llama3_rope_factors(const GGUFFile& f, const std::string& arch, const HParams& hp);

}  // namespace sparrow
