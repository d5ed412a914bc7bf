// GGUF, llama.cpp's model file (ggml's docs/gguf.md), read defensively: every
// count, length, offset and size is checked against the bytes that are there
// with overflow-safe arithmetic before it is used, so a truncated download or
// a hostile header gets a Status, never a read past the end or a huge
// allocation. Versions 2 and 3 (64-bit counts; version 1's 32-bit counts are
// refused), little-endian files only.
//
//   "GGUF", u32 version, u64 tensor_count, u64 metadata_count
//   metadata_count × { string key, u32 value_type, value }
//   tensor_count × { string name, u32 n_dims (<= 4), u64 ne[n_dims],
//                    u32 ggml_type, u64 offset (from the data section) }
//   padding to general.alignment (default 32), the data section.
// string: u64 length, bytes (no terminator). ne[0] varies fastest: a Linear's
// [out][in] weight has ne[0] = in, ne[1] = out.
//
// The parse keeps metadata values as they are stored (arrays as the position
// of their elements, read on demand), each tensor's shape, type and bytes. It
// knows the sizes of ggml's common types, so every tensor is bounds-checked;
// which types a model can use is the loader's business (loaders/model.h).
#ifndef TILEKIT_LOADERS_GGUF_H_
#define TILEKIT_LOADERS_GGUF_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "tilekit/base/size_math.h"
#include "tilekit/base/status.h"
#include "tilekit/loaders/file.h"

namespace tilekit {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr size_t kGgufDefaultAlignment = 32;
constexpr size_t kGgufMaxDims = 4;

enum class GgufValueType : uint32_t {
  kU8 = 0, kI8 = 1, kU16 = 2, kI16 = 3, kU32 = 4, kI32 = 5, kF32 = 6, kBool = 7,
  kString = 8, kArray = 9, kU64 = 10, kI64 = 11, kF64 = 12,
};
// Bytes of a fixed-size value type; 0 for string and array (and unknown types).
inline size_t gguf_value_bytes(uint32_t t) {
  static const size_t kBytes[13] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};
  return t < 13 ? kBytes[t] : 0;
}

// ggml's tensor types this parser can bound (values from ggml.h).
enum class GgmlType : uint32_t { kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kBf16 = 30 };

// Values per block and bytes per block of a ggml type id; false for ids it
// does not know (IQ types and later additions: their files are refused).
inline bool ggml_type_size(uint32_t type, size_t* block_values, size_t* block_bytes, const char** name) {
  struct Row { uint32_t id; size_t values, bytes; const char* name; };
  static const Row kTypes[] = {
      {0, 1, 4, "F32"},     {1, 1, 2, "F16"},     {2, 32, 18, "Q4_0"},  {3, 32, 20, "Q4_1"},
      {6, 32, 22, "Q5_0"},  {7, 32, 24, "Q5_1"},  {8, 32, 34, "Q8_0"},  {9, 32, 36, "Q8_1"},
      {10, 256, 84, "Q2_K"}, {11, 256, 110, "Q3_K"}, {12, 256, 144, "Q4_K"}, {13, 256, 176, "Q5_K"},
      {14, 256, 210, "Q6_K"}, {15, 256, 292, "Q8_K"}, {24, 1, 1, "I8"},    {25, 1, 2, "I16"},
      {26, 1, 4, "I32"},    {27, 1, 8, "I64"},    {28, 1, 8, "F64"},    {30, 1, 2, "BF16"},
  };
  for (const Row& r : kTypes) {
    if (r.id == type) {
      *block_values = r.values, *block_bytes = r.bytes;
      if (name) *name = r.name;
      return true;
    }
  }
  return false;
}
inline const char* ggml_type_name(uint32_t type) {
  size_t v, b;
  const char* name = "unknown";
  return ggml_type_size(type, &v, &b, &name) ? name : "unknown";
}

// A metadata value as stored. Scalars are decoded; a string points into the
// file; an array keeps its element type, count and where its elements start.
struct GgufValue {
  uint32_t type = 0;
  uint64_t u = 0;     // unsigned integers and bool
  int64_t i = 0;      // signed integers (also set for unsigned ones that fit)
  double f = 0;       // floats
  const char* str = nullptr;  // string: bytes in the file, str_len of them
  size_t str_len = 0;
  uint32_t elem_type = 0;  // array
  uint64_t count = 0;
  size_t elems_at = 0;  // array: file offset of the first element

  bool is_integer() const { return type <= 5 || type == 10 || type == 11; }
  bool is_float() const { return type == 6 || type == 12; }
  std::string string() const { return str ? std::string(str, str_len) : std::string(); }
};

struct GgufTensorInfo {
  std::string name;
  size_t dims = 0;
  uint64_t ne[kGgufMaxDims] = {1, 1, 1, 1};
  uint32_t type = 0;
  uint64_t offset = 0;  // from the data section
  size_t elements = 0, bytes = 0;
  const unsigned char* data = nullptr;  // into the parsed bytes
};

struct GgufFile {
  uint32_t version = 0;
  size_t alignment = kGgufDefaultAlignment;
  size_t data_offset = 0;  // the data section, from the start of the file
  std::map<std::string, GgufValue> metadata;
  std::vector<GgufTensorInfo> tensors;  // in file order
  std::map<std::string, size_t> tensor_index;
  const unsigned char* bytes = nullptr;
  size_t size = 0;

  const GgufValue* find(const std::string& key) const {
    const auto it = metadata.find(key);
    return it == metadata.end() ? nullptr : &it->second;
  }
  const GgufTensorInfo* tensor(const std::string& name) const {
    const auto it = tensor_index.find(name);
    return it == tensor_index.end() ? nullptr : &tensors[it->second];
  }
};

namespace gguf_detail {

// A string at the reader: its length, checked against the bytes left.
inline bool read_string(ByteReader& r, const char** s, size_t* len) {
  const uint64_t n = r.u64();
  if (!r.ok() || n > r.left()) return false;
  *s = reinterpret_cast<const char*>(r.take(static_cast<size_t>(n)));
  *len = static_cast<size_t>(n);
  return true;
}

// Reads (or skips) a value of type t; arrays of arrays are refused (no model
// metadata uses them, and they would make skipping recursive).
inline Status read_value(ByteReader& r, uint32_t t, GgufValue* v, const std::string& key) {
  v->type = t;
  if (t == static_cast<uint32_t>(GgufValueType::kString)) {
    if (!read_string(r, &v->str, &v->str_len)) return fail(Status::kShapeMismatch, "gguf: %s: string past the end of the file", key.c_str());
    return Status::kOk;
  }
  if (t == static_cast<uint32_t>(GgufValueType::kArray)) {
    v->elem_type = r.u32();
    v->count = r.u64();
    if (!r.ok()) return fail(Status::kShapeMismatch, "gguf: %s: array header past the end of the file", key.c_str());
    v->elems_at = r.offset();
    const size_t eb = gguf_value_bytes(v->elem_type);
    if (eb) {
      size_t bytes = 0;
      if (v->count > r.left() || !detail::mul_fits(static_cast<size_t>(v->count), eb, &bytes) || !r.take(bytes)) {
        return fail(Status::kShapeMismatch, "gguf: %s: array of %llu values runs past the end of the file", key.c_str(),
                    static_cast<unsigned long long>(v->count));
      }
      return Status::kOk;
    }
    if (v->elem_type == static_cast<uint32_t>(GgufValueType::kArray)) {
      return fail(Status::kUnsupported, "gguf: %s: an array of arrays", key.c_str());
    }
    if (v->elem_type != static_cast<uint32_t>(GgufValueType::kString)) {
      return fail(Status::kUnsupported, "gguf: %s: arrays of value type %u", key.c_str(), v->elem_type);
    }
    // Each string takes at least its 8-byte length: a count larger than that
    // allows is refused before walking.
    if (v->count > r.left() / 8) {
      return fail(Status::kShapeMismatch, "gguf: %s: %llu strings cannot fit in the %zu bytes left", key.c_str(),
                  static_cast<unsigned long long>(v->count), r.left());
    }
    for (uint64_t e = 0; e < v->count; ++e) {
      const char* s;
      size_t len;
      if (!read_string(r, &s, &len)) return fail(Status::kShapeMismatch, "gguf: %s: string %llu past the end of the file", key.c_str(), static_cast<unsigned long long>(e));
    }
    return Status::kOk;
  }
  const size_t bytes = gguf_value_bytes(t);
  if (!bytes) return fail(Status::kUnsupported, "gguf: %s: unknown value type %u", key.c_str(), t);
  const uint64_t raw = r.u(bytes);
  if (!r.ok()) return fail(Status::kShapeMismatch, "gguf: %s: value past the end of the file", key.c_str());
  switch (static_cast<GgufValueType>(t)) {
    case GgufValueType::kI8: v->i = static_cast<int8_t>(raw); break;
    case GgufValueType::kI16: v->i = static_cast<int16_t>(raw); break;
    case GgufValueType::kI32: v->i = static_cast<int32_t>(raw); break;
    case GgufValueType::kI64: v->i = static_cast<int64_t>(raw); break;
    case GgufValueType::kF32: {
      const uint32_t b = static_cast<uint32_t>(raw);
      float f;
      std::memcpy(&f, &b, 4);
      v->f = f;
      break;
    }
    case GgufValueType::kF64: std::memcpy(&v->f, &raw, 8); break;
    default: v->u = raw; v->i = raw <= static_cast<uint64_t>(INT64_MAX) ? static_cast<int64_t>(raw) : -1; break;
  }
  if (v->type == 1 || v->type == 3 || v->type == 5 || v->type == 11) v->u = v->i >= 0 ? static_cast<uint64_t>(v->i) : 0;
  return Status::kOk;
}

}  // namespace gguf_detail

// Parses the header of a GGUF file of `size` bytes at `bytes` (which must
// stay alive while `out` is used: tensors and strings point into it).
inline Status parse_gguf(const void* bytes, size_t size, GgufFile* out) {
  if (!out) return fail(Status::kNullPointer, "gguf: no output");
  if (!bytes && size) return fail(Status::kNullPointer, "gguf: no bytes");
  ByteReader r(static_cast<const unsigned char*>(bytes), size);
  const uint32_t magic = r.u32();
  if (!r.ok() || magic != kGgufMagic) return fail(Status::kInvalidArgument, "gguf: not a GGUF file (bad magic)");
  GgufFile f;
  f.bytes = static_cast<const unsigned char*>(bytes);
  f.size = size;
  f.version = r.u32();
  const uint64_t tensors = r.u64(), kvs = r.u64();
  if (!r.ok()) return fail(Status::kShapeMismatch, "gguf: the file ends inside its header");
  if (f.version != 2 && f.version != 3) {
    return fail(Status::kUnsupported, "gguf: version %u (this loader reads versions 2 and 3)", f.version);
  }
  // The smallest metadata entry takes 8 + 4 + 1 bytes, the smallest tensor
  // entry 8 + 4 + 4 + 8: counts that cannot fit are refused before anything
  // is sized by them.
  if (kvs > r.left() / 13) {
    return fail(Status::kShapeMismatch, "gguf: %llu metadata entries cannot fit in %zu bytes",
                static_cast<unsigned long long>(kvs), size);
  }
  for (uint64_t e = 0; e < kvs; ++e) {
    const char* key;
    size_t len;
    if (!gguf_detail::read_string(r, &key, &len)) return fail(Status::kShapeMismatch, "gguf: metadata key %llu past the end of the file", static_cast<unsigned long long>(e));
    const std::string name(key, len);
    const uint32_t type = r.u32();
    GgufValue v;
    const Status st = gguf_detail::read_value(r, type, &v, name);
    if (st != Status::kOk) return st;
    if (!f.metadata.emplace(name, v).second) return fail(Status::kInvalidArgument, "gguf: metadata key %s appears twice", name.c_str());
  }
  if (const GgufValue* a = f.find("general.alignment")) {
    if (!a->is_integer() || a->u == 0 || (a->u & (a->u - 1)) || a->u > 65536) {
      return fail(Status::kInvalidArgument, "gguf: general.alignment must be a power of two <= 65536");
    }
    f.alignment = static_cast<size_t>(a->u);
  }
  if (tensors > r.left() / 24) {
    return fail(Status::kShapeMismatch, "gguf: %llu tensors cannot fit in %zu bytes", static_cast<unsigned long long>(tensors), size);
  }
  f.tensors.reserve(static_cast<size_t>(tensors));
  for (uint64_t e = 0; e < tensors; ++e) {
    GgufTensorInfo t;
    const char* name;
    size_t len;
    if (!gguf_detail::read_string(r, &name, &len)) return fail(Status::kShapeMismatch, "gguf: tensor %llu's name past the end of the file", static_cast<unsigned long long>(e));
    t.name.assign(name, len);
    const uint32_t dims = r.u32();
    if (!r.ok()) return fail(Status::kShapeMismatch, "gguf: tensor %s past the end of the file", t.name.c_str());
    if (dims == 0 || dims > kGgufMaxDims) return fail(Status::kInvalidArgument, "gguf: tensor %s has %u dimensions (1 to 4)", t.name.c_str(), dims);
    t.dims = dims;
    size_t elements = 1;
    for (uint32_t d = 0; d < dims; ++d) {
      t.ne[d] = r.u64();
      if (t.ne[d] == 0 || t.ne[d] > static_cast<uint64_t>(INT64_MAX) ||
          !detail::mul_fits(elements, static_cast<size_t>(t.ne[d]), &elements)) {
        if (!r.ok()) break;
        return fail(Status::kOverflow, "gguf: tensor %s: dimension %u is %llu (0, or the elements overflow)", t.name.c_str(), d,
                    static_cast<unsigned long long>(t.ne[d]));
      }
    }
    t.type = r.u32();
    t.offset = r.u64();
    if (!r.ok()) return fail(Status::kShapeMismatch, "gguf: tensor %s past the end of the file", t.name.c_str());
    size_t block_values, block_bytes;
    if (!ggml_type_size(t.type, &block_values, &block_bytes, nullptr)) {
      return fail(Status::kUnsupported, "gguf: tensor %s has ggml type %u, which this loader does not know", t.name.c_str(), t.type);
    }
    if (t.ne[0] % block_values) {
      return fail(Status::kShapeMismatch, "gguf: tensor %s: %llu values per row are not whole %s blocks of %zu", t.name.c_str(),
                  static_cast<unsigned long long>(t.ne[0]), ggml_type_name(t.type), block_values);
    }
    if (!detail::mul_fits(elements / block_values, block_bytes, &t.bytes)) {
      return fail(Status::kOverflow, "gguf: tensor %s: its bytes overflow", t.name.c_str());
    }
    t.elements = elements;
    if (!f.tensor_index.emplace(t.name, f.tensors.size()).second) {
      return fail(Status::kInvalidArgument, "gguf: tensor %s appears twice", t.name.c_str());
    }
    f.tensors.push_back(std::move(t));
  }
  // The data section starts at the next multiple of the alignment.
  const size_t end_of_infos = r.offset();
  if (end_of_infos > SIZE_MAX - f.alignment) return fail(Status::kOverflow, "gguf: header too large");
  f.data_offset = round_up(end_of_infos, f.alignment);
  if (f.data_offset > size && !f.tensors.empty()) {
    return fail(Status::kShapeMismatch, "gguf: the file ends before its data section (%zu of %zu bytes)", size, f.data_offset);
  }
  const size_t data_bytes = f.data_offset <= size ? size - f.data_offset : 0;
  for (GgufTensorInfo& t : f.tensors) {
    if (t.offset % f.alignment) {
      return fail(Status::kInvalidArgument, "gguf: tensor %s at offset %llu is not aligned to %zu", t.name.c_str(),
                  static_cast<unsigned long long>(t.offset), f.alignment);
    }
    if (t.offset > data_bytes || t.bytes > data_bytes - static_cast<size_t>(t.offset)) {
      return fail(Status::kShapeMismatch, "gguf: tensor %s (%zu bytes at %llu) runs past the end of the file (truncated?)",
                  t.name.c_str(), t.bytes, static_cast<unsigned long long>(t.offset));
    }
    t.data = f.bytes + f.data_offset + static_cast<size_t>(t.offset);
  }
  *out = std::move(f);
  return Status::kOk;
}

// The strings of a string array (tokenizer.ggml.tokens), already bounded by
// parse_gguf.
inline Status gguf_strings(const GgufFile& f, const GgufValue& v, std::vector<std::string>* out) {
  if (v.type != static_cast<uint32_t>(GgufValueType::kArray) || v.elem_type != static_cast<uint32_t>(GgufValueType::kString)) {
    return fail(Status::kInvalidArgument, "gguf: not an array of strings");
  }
  ByteReader r(f.bytes + v.elems_at, f.size - v.elems_at);
  std::vector<std::string> s;
  s.reserve(static_cast<size_t>(v.count));
  for (uint64_t e = 0; e < v.count; ++e) {
    const char* p;
    size_t len;
    if (!gguf_detail::read_string(r, &p, &len)) return fail(Status::kShapeMismatch, "gguf: string array past the end");
    s.emplace_back(p, len);
  }
  *out = std::move(s);
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_LOADERS_GGUF_H_
