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
};

const ArchSpec* find_arch(const std::string& name);  // nullptr when unknown
std::string supported_archs();                       // "llama, qwen2, qwen3"

}  // namespace sparrow
