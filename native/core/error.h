// Errors thrown by the C++ core. The addon turns them into JS errors:
// Kind::GGUF -> GGUFError, Kind::Sparrow -> SparrowError, both with `code`.
#pragma once
#include <stdexcept>
#include <string>

namespace sparrow {

class Error : public std::runtime_error {
 public:
  enum class Kind { Sparrow, GGUF };
  Error(Kind kind, std::string code, const std::string& message)
      : std::runtime_error(message), kind_(kind), code_(std::move(code)) {}
  Kind kind() const { return kind_; }
  const std::string& code() const { return code_; }

 private:
  Kind kind_;
  std::string code_;
};

// A malformed or unreadable GGUF file.
inline Error gguf_error(const char* code, const std::string& message) {
  return Error(Error::Kind::GGUF, code, message);
}
// Anything else: bad options, unsupported model, out of memory, ...
inline Error sparrow_error(const char* code, const std::string& message) {
  return Error(Error::Kind::Sparrow, code, message);
}

}  // namespace sparrow
