// libFuzzer harness for the GGUF reader (not part of the addon). Build and run with
// scripts/fuzz-gguf.sh. Every input must parse or throw sparrow::Error; a parsed file's
// tensors must lie inside the input. Sanitizers catch the rest.
#include <cstdint>
#include <cstdlib>

#include "core/error.h"
#include "core/gguf.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    auto f = sparrow::GGUFFile::parse(data, size);
    for (const auto& t : f->tensors()) {
      if (t.data < data || t.data + t.bytes > data + size) abort();
    }
    // Decode every metadata value the way the model loader would.
    for (const auto& [key, v] : f->metadata()) {
      try {
        if (v.type == sparrow::GGUFType::STRING) (void)v.as_string(key);
        else if (v.type == sparrow::GGUFType::ARRAY && v.elem == sparrow::GGUFType::STRING) (void)v.as_string_array(key);
        else if (v.type == sparrow::GGUFType::ARRAY) (void)v.as_f32_array(key);
        else (void)v.as_f64(key);
      } catch (const sparrow::Error&) {
      }
    }
  } catch (const sparrow::Error&) {
  }
  return 0;
}
