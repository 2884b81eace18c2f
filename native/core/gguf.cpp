#include "gguf.h"

#include <algorithm>
#include <cstring>

#include "error.h"
#include "ggml_types.h"

namespace sparrow {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian uint32
constexpr int kMaxArrayDepth = 8;        // nested arrays deeper than this are refused
constexpr uint32_t kMaxDims = 4;
constexpr size_t kMaxTensorName = 63;    // ggml's GGML_MAX_NAME - 1
constexpr size_t kMaxKeyLength = 65535;

size_t scalar_size(GGUFType t) {
  switch (t) {
    case GGUFType::UINT8: case GGUFType::INT8: case GGUFType::BOOL: return 1;
    case GGUFType::UINT16: case GGUFType::INT16: return 2;
    case GGUFType::UINT32: case GGUFType::INT32: case GGUFType::FLOAT32: return 4;
    case GGUFType::UINT64: case GGUFType::INT64: case GGUFType::FLOAT64: return 8;
    default: return 0;  // STRING, ARRAY
  }
}

bool valid_type(uint32_t t) { return t <= uint32_t(GGUFType::FLOAT64); }

std::string hex(uint64_t v) {
  char buf[32];
  snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Bounds-checked reader over the file bytes. `what` names the field for messages.
class Cursor {
 public:
  Cursor(const uint8_t* base, size_t size) : base_(base), size_(size) {}
  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }
  const uint8_t* here() const { return base_ + pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      throw gguf_error("ERR_GGUF_TRUNCATED",
                       "file ends inside " + what + ": needs " + std::to_string(n) +
                           " bytes at offset " + std::to_string(pos_) + ", " +
                           std::to_string(remaining()) + " remain");
  }
  void skip(uint64_t n, const std::string& what) {
    need(n, what);
    pos_ += size_t(n);
  }
  template <class T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, base_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  // A GGUF string: uint64 length + bytes (not NUL-terminated).
  std::string read_string(const std::string& what, size_t max_len) {
    uint64_t len = read<uint64_t>(what + " length");
    if (len > max_len)
      throw gguf_error("ERR_GGUF_BAD_STRING", what + " is " + std::to_string(len) +
                                                  " bytes long, more than the limit of " +
                                                  std::to_string(max_len));
    need(len, what);
    std::string s(reinterpret_cast<const char*>(base_ + pos_), size_t(len));
    pos_ += size_t(len);
    return s;
  }

 private:
  const uint8_t* base_;
  size_t size_;
  size_t pos_ = 0;
};

// Walks one value of type `t` (validating it) and leaves the cursor after it.
void walk_value(Cursor& c, GGUFType t, int depth, const std::string& what) {
  if (size_t sz = scalar_size(t)) {
    c.skip(sz, what);
    return;
  }
  if (t == GGUFType::STRING) {
    uint64_t len = c.read<uint64_t>(what + " (string length)");
    c.skip(len, what + " (string of " + std::to_string(len) + " bytes)");
    return;
  }
  // ARRAY
  if (depth >= kMaxArrayDepth)
    throw gguf_error("ERR_GGUF_BAD_ARRAY", what + ": arrays nested more than " +
                                               std::to_string(kMaxArrayDepth) + " deep");
  uint32_t et = c.read<uint32_t>(what + " (array element type)");
  if (!valid_type(et))
    throw gguf_error("ERR_GGUF_BAD_VALUE_TYPE",
                     what + ": array element type " + std::to_string(et) + " is not a GGUF type");
  uint64_t n = c.read<uint64_t>(what + " (array length)");
  GGUFType elem = GGUFType(et);
  // The smallest encoding of one element bounds the count by the bytes that remain.
  size_t min_elem = scalar_size(elem) ? scalar_size(elem) : (elem == GGUFType::STRING ? 8 : 12);
  if (n > c.remaining() / min_elem)
    throw gguf_error("ERR_GGUF_BAD_ARRAY", what + ": array of " + std::to_string(n) + " " +
                                               gguf_type_name(elem) + " elements cannot fit in the " +
                                               std::to_string(c.remaining()) + " bytes that remain");
  if (scalar_size(elem)) {
    c.skip(n * min_elem, what);
    return;
  }
  if (elem == GGUFType::STRING) {  // the common large case (vocabularies): no per-element names
    for (uint64_t i = 0; i < n; i++) {
      if (c.remaining() < 8) c.need(8, what + "[" + std::to_string(i) + "] (string length)");
      uint64_t len = c.read<uint64_t>(what);
      if (len > c.remaining()) c.need(len, what + "[" + std::to_string(i) + "] (string of " + std::to_string(len) + " bytes)");
      c.skip(len, what);
    }
    return;
  }
  for (uint64_t i = 0; i < n; i++) walk_value(c, elem, depth + 1, what + "[" + std::to_string(i) + "]");
}

template <class T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

}  // namespace

const char* gguf_type_name(GGUFType t) {
  static const char* names[] = {"uint8", "int8",  "uint16", "int16",  "uint32", "int32", "float32",
                                "bool",  "string", "array", "uint64", "int64",  "float64"};
  return valid_type(uint32_t(t)) ? names[uint32_t(t)] : "invalid";
}

// ---- GGUFValue accessors ----------------------------------------------------------

static Error type_error(const std::string& key, const char* want, GGUFType got) {
  return gguf_error("ERR_GGUF_METADATA_TYPE", "metadata '" + key + "' should be " + want +
                                                  ", but is " + gguf_type_name(got));
}

bool GGUFValue::is_integer() const {
  switch (type) {
    case GGUFType::UINT8: case GGUFType::INT8: case GGUFType::UINT16: case GGUFType::INT16:
    case GGUFType::UINT32: case GGUFType::INT32: case GGUFType::UINT64: case GGUFType::INT64:
      return true;
    default: return false;
  }
}

static int64_t read_int(GGUFType t, const uint8_t* p) {
  switch (t) {
    case GGUFType::UINT8: return load<uint8_t>(p);
    case GGUFType::INT8: return load<int8_t>(p);
    case GGUFType::UINT16: return load<uint16_t>(p);
    case GGUFType::INT16: return load<int16_t>(p);
    case GGUFType::UINT32: return load<uint32_t>(p);
    case GGUFType::INT32: return load<int32_t>(p);
    case GGUFType::UINT64: return int64_t(load<uint64_t>(p));
    case GGUFType::INT64: return load<int64_t>(p);
    case GGUFType::BOOL: return load<uint8_t>(p) != 0;
    default: return 0;
  }
}

static bool read_number(GGUFType t, const uint8_t* p, double* out) {
  if (t == GGUFType::FLOAT32) { *out = load<float>(p); return true; }
  if (t == GGUFType::FLOAT64) { *out = load<double>(p); return true; }
  if (t == GGUFType::UINT64) { *out = double(load<uint64_t>(p)); return true; }
  GGUFValue probe{t};
  if (probe.is_integer()) { *out = double(read_int(t, p)); return true; }
  return false;
}

uint64_t GGUFValue::as_u64(const std::string& key) const {
  if (!is_integer()) throw type_error(key, "an integer", type);
  if (type == GGUFType::UINT64) return load<uint64_t>(data);
  int64_t v = read_int(type, data);
  if (v < 0) throw gguf_error("ERR_GGUF_METADATA_VALUE", "metadata '" + key + "' is negative (" + std::to_string(v) + ")");
  return uint64_t(v);
}

int64_t GGUFValue::as_i64(const std::string& key) const {
  if (!is_integer()) throw type_error(key, "an integer", type);
  return read_int(type, data);
}

double GGUFValue::as_f64(const std::string& key) const {
  double v;
  if (!read_number(type, data, &v)) throw type_error(key, "a number", type);
  return v;
}

bool GGUFValue::as_bool(const std::string& key) const {
  if (type != GGUFType::BOOL) throw type_error(key, "a bool", type);
  return data[0] != 0;
}

std::string GGUFValue::as_string(const std::string& key) const {
  if (type != GGUFType::STRING) throw type_error(key, "a string", type);
  uint64_t len = load<uint64_t>(data);
  return std::string(reinterpret_cast<const char*>(data + 8), size_t(len));
}

std::vector<std::string> GGUFValue::as_string_array(const std::string& key) const {
  if (type != GGUFType::ARRAY || elem != GGUFType::STRING) throw type_error(key, "an array of strings", type);
  std::vector<std::string> out;
  out.reserve(size_t(count));
  const uint8_t* p = data;
  for (uint64_t i = 0; i < count; i++) {
    uint64_t len = load<uint64_t>(p);
    out.emplace_back(reinterpret_cast<const char*>(p + 8), size_t(len));
    p += 8 + len;
  }
  return out;
}

std::vector<float> GGUFValue::as_f32_array(const std::string& key) const {
  size_t es = scalar_size(elem);
  if (type != GGUFType::ARRAY || !es || elem == GGUFType::BOOL) throw type_error(key, "an array of numbers", type);
  std::vector<float> out(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; i++) {
    double v = 0;
    read_number(elem, data + i * es, &v);
    out[size_t(i)] = float(v);
  }
  return out;
}

std::vector<int64_t> GGUFValue::as_i64_array(const std::string& key) const {
  size_t es = scalar_size(elem);
  GGUFValue probe{elem};
  if (type != GGUFType::ARRAY || !probe.is_integer()) throw type_error(key, "an array of integers", type);
  std::vector<int64_t> out(static_cast<size_t>(count));
  for (uint64_t i = 0; i < count; i++) out[size_t(i)] = read_int(elem, data + i * es);
  return out;
}

// ---- GGUFFile -----------------------------------------------------------------------

std::shared_ptr<GGUFFile> GGUFFile::open(const std::string& path) {
  std::shared_ptr<GGUFFile> f(new GGUFFile());
  f->path_ = path;
  f->map_ = std::make_unique<MappedFile>(path);
  f->base_ = f->map_->data();
  f->size_ = f->map_->size();
  f->parse_all();
  return f;
}

std::shared_ptr<GGUFFile> GGUFFile::parse(const uint8_t* bytes, size_t size, std::shared_ptr<void> keep) {
  std::shared_ptr<GGUFFile> f(new GGUFFile());
  f->path_ = "<memory>";
  f->keep_ = std::move(keep);
  f->base_ = bytes;
  f->size_ = size;
  f->parse_all();
  return f;
}

void GGUFFile::parse_all() {
  static const uint8_t kEmpty[1] = {0};
  Cursor c(base_ ? base_ : kEmpty, base_ ? size_ : 0);

  if (size_ < 4) throw gguf_error("ERR_GGUF_MAGIC", "not a GGUF file: it is only " + std::to_string(size_) + " bytes long");
  uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic)
    throw gguf_error("ERR_GGUF_MAGIC", "not a GGUF file: magic is " + hex(magic) + ", expected 0x46554747 ('GGUF')");
  version_ = c.read<uint32_t>("version");
  if (version_ == 1)
    throw gguf_error("ERR_GGUF_VERSION", "GGUF version 1 is obsolete and not supported (convert the file to v3)");
  if (version_ != 2 && version_ != 3) {
    if ((version_ & 0xffff) == 0 && version_ != 0)
      throw gguf_error("ERR_GGUF_VERSION", "GGUF version " + std::to_string(version_) +
                                               " looks byte-swapped: big-endian GGUF files are not supported");
    throw gguf_error("ERR_GGUF_VERSION", "unsupported GGUF version " + std::to_string(version_) + " (supported: 2, 3)");
  }
  uint64_t n_tensors = c.read<uint64_t>("tensor count");
  uint64_t n_kv = c.read<uint64_t>("metadata count");
  // Each key/value needs at least 8 (key length) + 1 (key) + 4 (type) + 1 (value) bytes,
  // each tensor info at least 8 + 1 + 4 + 8 + 4 + 8.
  if (n_kv > c.remaining() / 14)
    throw gguf_error("ERR_GGUF_BAD_COUNT", "metadata count " + std::to_string(n_kv) + " cannot fit in a file of " +
                                               std::to_string(size_) + " bytes");
  if (n_tensors > c.remaining() / 32)
    throw gguf_error("ERR_GGUF_BAD_COUNT", "tensor count " + std::to_string(n_tensors) + " cannot fit in a file of " +
                                               std::to_string(size_) + " bytes");

  kv_.reserve(size_t(n_kv));
  for (uint64_t i = 0; i < n_kv; i++) {
    std::string where = "metadata #" + std::to_string(i);
    std::string key = c.read_string(where + " key", kMaxKeyLength);
    if (key.empty()) throw gguf_error("ERR_GGUF_BAD_KEY", where + " has an empty key");
    where += " ('" + key + "')";
    uint32_t t = c.read<uint32_t>(where + " type");
    if (!valid_type(t))
      throw gguf_error("ERR_GGUF_BAD_VALUE_TYPE", where + ": value type " + std::to_string(t) + " is not a GGUF type");
    GGUFValue v{GGUFType(t)};
    size_t start = c.pos();
    if (v.type == GGUFType::ARRAY) {
      // Peek the header; walk_value validates the whole body.
      Cursor peek = c;
      v.elem = GGUFType(peek.read<uint32_t>(where + " (array element type)"));
      v.count = peek.read<uint64_t>(where + " (array length)");
      walk_value(c, v.type, 0, where);
      v.data = base_ + start + 12;
      v.size = c.pos() - start - 12;
    } else {
      walk_value(c, v.type, 0, where);
      v.data = base_ + start;
      v.size = c.pos() - start;
    }
    if (kv_index_.count(key)) throw gguf_error("ERR_GGUF_DUPLICATE_KEY", "metadata key '" + key + "' appears twice");
    kv_index_.emplace(key, kv_.size());
    kv_.emplace_back(std::move(key), v);
  }

  if (const GGUFValue* a = find("general.alignment")) {
    if (a->type != GGUFType::UINT32)
      throw gguf_error("ERR_GGUF_BAD_ALIGNMENT", std::string("general.alignment should be uint32, but is ") + gguf_type_name(a->type));
    uint32_t al = load<uint32_t>(a->data);
    if (al == 0 || (al & (al - 1)) != 0)
      throw gguf_error("ERR_GGUF_BAD_ALIGNMENT", "general.alignment is " + std::to_string(al) + ", not a power of two");
    alignment_ = al;
  }

  tensors_.reserve(size_t(n_tensors));
  for (uint64_t i = 0; i < n_tensors; i++) {
    std::string where = "tensor #" + std::to_string(i);
    GGUFTensor t{};
    t.name = c.read_string(where + " name", 1u << 16);
    if (t.name.size() > kMaxTensorName)
      throw gguf_error("ERR_GGUF_BAD_TENSOR_NAME", where + " has a name of " + std::to_string(t.name.size()) +
                                                        " bytes (the limit is " + std::to_string(kMaxTensorName) + ")");
    where = "tensor '" + t.name + "'";
    t.n_dims = c.read<uint32_t>(where + " dimension count");
    if (t.n_dims == 0 || t.n_dims > kMaxDims)
      throw gguf_error("ERR_GGUF_BAD_SHAPE", where + " has " + std::to_string(t.n_dims) + " dimensions (1 to 4 allowed)");
    uint64_t elements = 1;
    for (uint32_t d = 0; d < t.n_dims; d++) {
      int64_t ne = c.read<int64_t>(where + " dimension " + std::to_string(d));
      if (ne < 0)
        throw gguf_error("ERR_GGUF_BAD_SHAPE", where + " has a negative size in dimension " + std::to_string(d));
      t.ne[d] = ne;
      if (__builtin_mul_overflow(elements, uint64_t(ne), &elements) || elements > (uint64_t(1) << 62))
        throw gguf_error("ERR_GGUF_BAD_SHAPE", where + " has too many elements");
    }
    t.type = c.read<uint32_t>(where + " type");
    const TypeInfo* ti = type_info(t.type);
    if (!ti) throw gguf_error("ERR_GGUF_BAD_TENSOR_TYPE", where + " has unknown type id " + std::to_string(t.type));
    if (t.ne[0] % ti->block_size != 0)
      throw gguf_error("ERR_GGUF_BAD_SHAPE", where + " has a row of " + std::to_string(t.ne[0]) + " elements, not a multiple of " +
                                                 ti->name + "'s block of " + std::to_string(ti->block_size));
    // bytes = (ne0 / block) * type_size * ne1 * ne2 * ne3; elements < 2^62 keeps this in range
    uint64_t rows = uint64_t(t.ne[1]) * uint64_t(t.ne[2]) * uint64_t(t.ne[3]);
    uint64_t row_bytes = uint64_t(t.ne[0]) / ti->block_size * ti->type_size;
    if (__builtin_mul_overflow(row_bytes, rows, &t.bytes))
      throw gguf_error("ERR_GGUF_BAD_SHAPE", where + " is too large");
    t.offset = c.read<uint64_t>(where + " offset");
    if (t.offset % alignment_ != 0)
      throw gguf_error("ERR_GGUF_BAD_OFFSET", where + " offset " + std::to_string(t.offset) + " is not a multiple of the alignment " +
                                                  std::to_string(alignment_));
    if (tensor_index_.count(t.name)) throw gguf_error("ERR_GGUF_DUPLICATE_TENSOR", "tensor name '" + t.name + "' appears twice");
    tensor_index_.emplace(t.name, tensors_.size());
    tensors_.push_back(std::move(t));
  }

  // The data section starts at the next multiple of the alignment.
  uint64_t pos = c.pos();
  uint64_t data_start = (pos + alignment_ - 1) / alignment_ * alignment_;
  data_offset_ = data_start;
  if (tensors_.empty()) return;
  if (data_start > size_)
    throw gguf_error("ERR_GGUF_TRUNCATED", "file ends before the tensor data section (which starts at offset " +
                                               std::to_string(data_start) + ")");
  uint64_t data_size = size_ - data_start;
  std::vector<size_t> order(tensors_.size());
  for (size_t i = 0; i < order.size(); i++) {
    GGUFTensor& t = tensors_[i];
    uint64_t end;
    if (__builtin_add_overflow(t.offset, t.bytes, &end) || end > data_size)
      throw gguf_error("ERR_GGUF_BAD_OFFSET", "tensor '" + t.name + "' (" + std::to_string(t.bytes) + " bytes at data offset " +
                                                  std::to_string(t.offset) + ") extends past the end of the file");
    t.data = base_ + data_start + t.offset;
    order[i] = i;
  }
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return tensors_[a].offset < tensors_[b].offset; });
  for (size_t k = 1; k < order.size(); k++) {
    const GGUFTensor& a = tensors_[order[k - 1]];
    const GGUFTensor& b = tensors_[order[k]];
    if (a.bytes > 0 && b.bytes > 0 && a.offset + a.bytes > b.offset)
      throw gguf_error("ERR_GGUF_OVERLAP", "tensors '" + a.name + "' and '" + b.name + "' overlap in the data section");
  }
}

const GGUFValue* GGUFFile::find(const std::string& key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

const GGUFTensor* GGUFFile::tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

uint64_t GGUFFile::get_u64(const std::string& key, uint64_t dflt) const {
  const GGUFValue* v = find(key);
  return v ? v->as_u64(key) : dflt;
}

double GGUFFile::get_f64(const std::string& key, double dflt) const {
  const GGUFValue* v = find(key);
  return v ? v->as_f64(key) : dflt;
}

std::string GGUFFile::get_string(const std::string& key, const std::string& dflt) const {
  const GGUFValue* v = find(key);
  return v ? v->as_string(key) : dflt;
}

}  // namespace sparrow
