#include "hparams.h"

#include <cmath>

#include "arch.h"
#include "core/error.h"
#include "core/gguf.h"

namespace sparrow {

namespace {

// Reads <arch>.<key> values.
class Meta {
 public:
  Meta(const GGUFFile& f, const std::string& arch) : f_(f), prefix_(arch + ".") {}
  std::string key(const std::string& k) const { return prefix_ + k; }
  uint64_t req_u64(const std::string& k) const {
    if (!f_.find(key(k))) throw sparrow_error("ERR_BAD_MODEL", "model metadata is missing '" + key(k) + "'");
    return f_.get_u64(key(k), 0);
  }
  uint64_t opt_u64(const std::string& k, uint64_t dflt) const { return f_.get_u64(key(k), dflt); }
  double opt_f64(const std::string& k, double dflt) const { return f_.get_f64(key(k), dflt); }
  std::string opt_str(const std::string& k, const std::string& dflt) const { return f_.get_string(key(k), dflt); }

 private:
  const GGUFFile& f_;
  std::string prefix_;
};

int to_int(uint64_t v, const std::string& key, uint64_t max = 1u << 30) {
  if (v == 0 || v > max)
    throw sparrow_error("ERR_BAD_MODEL", "model metadata '" + key + "' is " + std::to_string(v) + " (expected 1.." +
                                             std::to_string(max) + ")");
  return int(v);
}

float positive_f(const Meta& M, const std::string& p, const char* key, double dflt) {
  const double v = M.opt_f64(key, dflt);
  if (!(v > 0) || !std::isfinite(v)) throw sparrow_error("ERR_BAD_MODEL", p + key + " must be a positive number");
  return float(v);
}

}  // namespace

HParams read_hparams(const GGUFFile& f, const ArchSpec& spec) {
  const std::string arch = spec.name;
  const Meta M(f, arch);
  HParams hp;
  const std::string p = arch + ".";
  hp.n_embd = to_int(M.req_u64("embedding_length"), p + "embedding_length");
  hp.n_layer = to_int(M.req_u64("block_count"), p + "block_count", 4096);
  hp.n_head = to_int(M.req_u64("attention.head_count"), p + "attention.head_count", 4096);
  hp.n_head_kv = to_int(M.opt_u64("attention.head_count_kv", uint64_t(hp.n_head)), p + "attention.head_count_kv", 4096);
  hp.n_ff = to_int(M.req_u64("feed_forward_length"), p + "feed_forward_length");
  hp.n_ctx_train = to_int(M.req_u64("context_length"), p + "context_length");
  if (hp.n_head % hp.n_head_kv != 0)
    throw sparrow_error("ERR_BAD_MODEL", p + "attention.head_count (" + std::to_string(hp.n_head) +
                                             ") is not a multiple of " + p + "attention.head_count_kv (" +
                                             std::to_string(hp.n_head_kv) + ")");
  uint64_t hd_default = hp.n_embd % hp.n_head == 0 ? uint64_t(hp.n_embd / hp.n_head) : 0;
  hp.head_dim = to_int(M.opt_u64("attention.key_length", hd_default), p + "attention.key_length", 65536);
  int v_dim = to_int(M.opt_u64("attention.value_length", uint64_t(hp.head_dim)), p + "attention.value_length", 65536);
  if (v_dim != hp.head_dim)
    throw sparrow_error("ERR_BAD_MODEL", p + "attention.value_length (" + std::to_string(v_dim) +
                                             ") differs from the key length (" + std::to_string(hp.head_dim) +
                                             "): not supported");
  hp.rope_dim = to_int(M.opt_u64("rope.dimension_count", uint64_t(hp.head_dim)), p + "rope.dimension_count", 65536);
  if (hp.rope_dim > hp.head_dim || hp.rope_dim % 2 != 0)
    throw sparrow_error("ERR_BAD_MODEL", p + "rope.dimension_count (" + std::to_string(hp.rope_dim) +
                                             ") must be even and at most the head dimension (" +
                                             std::to_string(hp.head_dim) + ")");
  hp.rope_base = float(M.opt_f64("rope.freq_base", 10000.0));
  hp.rms_eps = float(M.opt_f64("attention.layer_norm_rms_epsilon", 1e-5));
  if (!(hp.rope_base > 0)) throw sparrow_error("ERR_BAD_MODEL", p + "rope.freq_base must be positive");
  if (!(hp.rms_eps >= 0)) throw sparrow_error("ERR_BAD_MODEL", p + "attention.layer_norm_rms_epsilon must not be negative");

  // RoPE scaling: linear (a factor on positions) and Llama-3.1 frequency factors.
  hp.rope_scaling = M.opt_str("rope.scaling.type", "");
  double linear = M.opt_f64("rope.scale_linear", 0.0);  // older key
  if (hp.rope_scaling == "linear" || hp.rope_scaling == "yarn") linear = M.opt_f64("rope.scaling.factor", 1.0);
  else if (!hp.rope_scaling.empty() && hp.rope_scaling != "none" && hp.rope_scaling != "llama3" &&
           !(hp.rope_scaling == "longrope" && spec.longrope != Need::Absent))
    throw sparrow_error("ERR_UNSUPPORTED_ROPE", p + "rope.scaling.type '" + hp.rope_scaling +
                                                    "' is not supported (supported: none, linear, llama3, yarn" +
                                                    std::string(spec.longrope != Need::Absent ? ", longrope" : "") + ")");
  hp.rope_attn_factor = float(M.opt_f64("rope.scaling.attn_factor", 1.0));
  if (!(hp.rope_attn_factor > 0) || !std::isfinite(hp.rope_attn_factor))
    throw sparrow_error("ERR_BAD_MODEL", p + "rope.scaling.attn_factor must be positive");
  hp.n_ctx_orig = to_int(M.opt_u64("rope.scaling.original_context_length", uint64_t(hp.n_ctx_train)),
                         p + "rope.scaling.original_context_length");
  if (linear != 0.0) {
    if (!(linear > 0)) throw sparrow_error("ERR_BAD_MODEL", p + "rope scaling factor must be positive");
    hp.rope_freq_scale = float(1.0 / linear);
  }

  // YaRN, as llama.cpp sets it up: ext_factor 1, and an attention factor that cancels the
  // 1 + 0.1 ln(factor) the rotation applies (RopeParams) and puts in its place
  // 1 + 0.1 mscale ln(factor) over 1 + 0.1 mscale_all_dims ln(factor) (mscale 1;
  // mscale_all_dims: rope.scaling.yarn_log_multiplier, 0 when absent: no division),
  // times rope.scaling.attn_factor. Computed in float in llama.cpp's order.
  if (hp.rope_scaling == "yarn") {
    hp.yarn_ext_factor = 1.0f;
    hp.yarn_beta_fast = positive_f(M, p, "rope.scaling.yarn_beta_fast", 32.0);
    hp.yarn_beta_slow = positive_f(M, p, "rope.scaling.yarn_beta_slow", 1.0);
    const float factor = 1.0f / hp.rope_freq_scale;
    auto get_mscale = [](float scale, float mscale) {
      return scale <= 1.0f ? 1.0f : (0.1f * mscale * std::log(scale) + 1.0f);
    };
    const float log_mul = float(M.opt_f64("rope.scaling.yarn_log_multiplier", 0.0));
    float af = log_mul != 0.0f ? get_mscale(factor, 1.0f) / get_mscale(factor, log_mul) : get_mscale(factor, 1.0f);
    af *= 1.0f / (1.0f + 0.1f * std::log(factor));
    af *= hp.rope_attn_factor;
    hp.rope_attn_factor = af;
  }

  // Mixture of experts.
  if (spec.moe != Need::Absent) {
    const uint64_t ne = M.opt_u64("expert_count", 0);
    if (ne == 0 && spec.moe == Need::Required)
      throw sparrow_error("ERR_BAD_MODEL", "model metadata is missing '" + p + "expert_count'");
    if (ne > 0) {
      hp.n_expert = to_int(ne, p + "expert_count", 4096);
      hp.n_expert_used = to_int(M.req_u64("expert_used_count"), p + "expert_used_count", uint64_t(hp.n_expert));
      // llama.cpp: experts as wide as feed_forward_length (llama), or expert_feed_forward_length,
      // else feed_forward_length / expert_used_count (qwen3moe).
      // (gpt-oss: the key is required, as llama.cpp reads it.)
      const uint64_t dflt = arch == "qwen3moe" ? uint64_t(hp.n_ff / hp.n_expert_used) : uint64_t(hp.n_ff);
      const uint64_t fe = arch == "gpt-oss" ? M.req_u64("expert_feed_forward_length") : M.opt_u64("expert_feed_forward_length", dflt);
      hp.n_ff_exp = to_int(fe, p + "expert_feed_forward_length");
    }
  }

  // Gemma: Q pre-scaled by 1/sqrt(head_dim), or 1/sqrt(n_embd / n_head) for the 27B models
  // (46 layers for Gemma 2, 62 for Gemma 3), as llama.cpp decides it.
  if (spec.gemma_scaling) {
    const bool is27b = (arch == "gemma2" && hp.n_layer == 46) || (arch == "gemma3" && hp.n_layer == 62);
    hp.attn_scale = 1.0f / std::sqrt(float(is27b ? hp.n_embd / hp.n_head : hp.head_dim));
  } else if (spec.q_prescale) {
    hp.attn_scale = 1.0f / std::sqrt(float(hp.head_dim));
  }
  auto positive = [&](const char* key, double v) {
    if (!(v >= 0) || !std::isfinite(v)) throw sparrow_error("ERR_BAD_MODEL", p + key + " must be a finite non-negative number");
    return float(v);
  };
  if (spec.attn_softcap) hp.attn_softcap = positive("attn_logit_softcapping", M.opt_f64("attn_logit_softcapping", 50.0));
  hp.final_softcap = positive("final_logit_softcapping", M.opt_f64("final_logit_softcapping", spec.final_softcap_default));
  // gpt-oss's window is required (llama.cpp reads it so); the others fall back to the row's default.
  const uint64_t window = spec.swa_pattern == 0 ? 0
                          : arch == "gpt-oss"   ? M.req_u64("attention.sliding_window")
                                                : M.opt_u64("attention.sliding_window", uint64_t(spec.swa_default));
  if (window > 0) {
    hp.n_swa = to_int(window, p + "attention.sliding_window");
    hp.swa_pattern = spec.swa_pattern;
    const std::string pk = M.key("attention.sliding_window_pattern");
    if (const GGUFValue* v = f.find(pk); v && v->is_integer())
      hp.swa_pattern = to_int(f.get_u64(pk, 0), pk, 4096);
    hp.rope_base_swa = spec.swa_rope_base > 0 ? spec.swa_rope_base : hp.rope_base;
    hp.rope_base_swa = positive("rope.freq_base_swa", M.opt_f64("rope.freq_base_swa", hp.rope_base_swa));
    if (!(hp.rope_base_swa > 0)) throw sparrow_error("ERR_BAD_MODEL", p + "rope.freq_base_swa must be positive");
  }
  return hp;
}

std::vector<float> llama3_rope_factors(const GGUFFile& f, const std::string& arch, const HParams& hp) {
  const Meta M(f, arch);
  double factor = M.opt_f64("rope.scaling.factor", 8.0);
  double lo = M.opt_f64("rope.scaling.low_freq_factor", 1.0);
  double hi = M.opt_f64("rope.scaling.high_freq_factor", 4.0);
  double old_ctx = double(M.opt_u64("rope.scaling.original_context_length", 8192));
  double lo_wavelen = old_ctx / lo, hi_wavelen = old_ctx / hi;
  std::vector<float> out(size_t(hp.rope_dim / 2));
  for (size_t i = 0; i < out.size(); i++) {
    double freq = std::pow(double(hp.rope_base), -2.0 * double(i) / hp.rope_dim);
    double wavelen = 2 * 3.14159265358979323846 / freq;
    if (wavelen < hi_wavelen) out[i] = 1.0f;
    else if (wavelen > lo_wavelen) out[i] = float(factor);
    else {
      double smooth = (old_ctx / wavelen - lo) / (hi - lo);
      out[i] = float(1.0 / ((1 - smooth) / factor + smooth));
    }
  }
  return out;
}

}  // namespace sparrow
