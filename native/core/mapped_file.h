// A read-only memory map of a whole file. Tensor data is used in place, never copied.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace sparrow {

class MappedFile {
 public:
  explicit MappedFile(const std::string& path);  // throws GGUF error ERR_GGUF_IO
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }
  // Ask the OS to read ahead (model load) or to drop the pages (dispose).
  void advise_willneed() const;

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
#ifdef _WIN32
  void* file_ = nullptr;
  void* mapping_ = nullptr;
#endif
};

}  // namespace sparrow
