// GGUF reader: parses and validates the header of a GGUF v2/v3 file held in a memory
// map. Metadata values are not copied: a Value points into the mapping and is decoded
// on demand. Every length, count and offset is checked against the bytes that exist
// before it is used, so a lying field yields a GGUF error, never a large allocation.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "mapped_file.h"

namespace sparrow {

enum class GGUFType : uint32_t {
  UINT8 = 0, INT8 = 1, UINT16 = 2, INT16 = 3, UINT32 = 4, INT32 = 5, FLOAT32 = 6,
  BOOL = 7, STRING = 8, ARRAY = 9, UINT64 = 10, INT64 = 11, FLOAT64 = 12,
};
const char* gguf_type_name(GGUFType t);

// A metadata value in the mapped file. For an ARRAY, `elem` is the element type,
// `count` the number of elements, and `data` the first element.
struct GGUFValue {
  GGUFType type;
  GGUFType elem = GGUFType::UINT8;
  uint64_t count = 0;
  const uint8_t* data = nullptr;  // scalar bytes, string (length-prefixed), or array body
  size_t size = 0;                // bytes of the whole value (for arrays: the body)

  bool is_integer() const;
  // Scalars (throw a GGUF error ERR_GGUF_METADATA_TYPE naming `key` when the type is wrong).
  uint64_t as_u64(const std::string& key) const;  // any non-negative integer type
  int64_t as_i64(const std::string& key) const;   // any integer type
  double as_f64(const std::string& key) const;    // any number
  bool as_bool(const std::string& key) const;
  std::string as_string(const std::string& key) const;
  // Arrays
  std::vector<std::string> as_string_array(const std::string& key) const;
  std::vector<float> as_f32_array(const std::string& key) const;  // any numeric elements
  std::vector<int64_t> as_i64_array(const std::string& key) const;  // any integer elements
};

struct GGUFTensor {
  std::string name;
  uint32_t type;             // ggml type id
  uint32_t n_dims;
  int64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the contiguous (row) dimension
  uint64_t offset;           // from the start of the data section
  uint64_t bytes;
  const uint8_t* data;       // into the mapping
  uint64_t elements() const { return uint64_t(ne[0]) * ne[1] * ne[2] * ne[3]; }
};

class GGUFFile {
 public:
  // Maps and validates the file; throws sparrow::Error (Kind::GGUF) on any fault.
  static std::shared_ptr<GGUFFile> open(const std::string& path);
  // Validates an in-memory buffer (used by the fuzz harness); `keep` owns the bytes.
  static std::shared_ptr<GGUFFile> parse(const uint8_t* bytes, size_t size,
                                         std::shared_ptr<void> keep = nullptr);

  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return size_; }
  const std::string& path() const { return path_; }
  const MappedFile* mapping() const { return map_.get(); }

  const std::vector<std::pair<std::string, GGUFValue>>& metadata() const { return kv_; }
  const GGUFValue* find(const std::string& key) const;
  const std::vector<GGUFTensor>& tensors() const { return tensors_; }
  const GGUFTensor* tensor(const std::string& name) const;

  // Typed lookups with defaults, for model hyper-parameters.
  uint64_t get_u64(const std::string& key, uint64_t dflt) const;
  double get_f64(const std::string& key, double dflt) const;
  std::string get_string(const std::string& key, const std::string& dflt) const;

 private:
  GGUFFile() = default;
  void parse_all();

  std::string path_;
  std::unique_ptr<MappedFile> map_;
  std::shared_ptr<void> keep_;
  const uint8_t* base_ = nullptr;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GGUFValue>> kv_;
  std::unordered_map<std::string, size_t> kv_index_;
  std::vector<GGUFTensor> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace sparrow
