// safetensors, Hugging Face's tensor file (huggingface/safetensors, its
// format section), read defensively:
//
//   u64 N (little-endian), N bytes of JSON header, the data section.
//   header: { "<name>": { "dtype": "F32", "shape": [d0, ...],
//                         "data_offsets": [begin, end] }, ...,
//             "__metadata__": { "<key>": "<string>", ... } (optional) }
//
// Offsets are from the start of the data section; shapes are row-major,
// outermost first (a Linear's weight is [out][in]). Checked here: the header
// length against the file (and a 100 MB cap, as the reference reader has),
// the JSON, each entry's fields and types, every dimension and the element
// count with overflow-safe arithmetic, end - begin = elements · dtype bytes,
// every range inside the data section, and no two ranges overlapping.
// Unknown dtypes are parsed for their size where the format names one, so a
// file is bounds-checked whole; which dtypes a model takes is the loader's
// business (loaders/model.h).
#ifndef TILEKIT_LOADERS_SAFETENSORS_H_
#define TILEKIT_LOADERS_SAFETENSORS_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tilekit/base/size_math.h"
#include "tilekit/base/status.h"
#include "tilekit/loaders/file.h"
#include "tilekit/loaders/json.h"

namespace tilekit {

constexpr size_t kSafetensorsMaxHeader = 100u << 20;
constexpr size_t kSafetensorsMaxDims = 8;

// Bytes per element of a safetensors dtype; 0 for names it does not know.
inline size_t safetensors_dtype_bytes(const std::string& d) {
  static const std::pair<const char*, size_t> kDtypes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
      {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
  };
  for (const auto& t : kDtypes) {
    if (d == t.first) return t.second;
  }
  return 0;
}

struct SafetensorsTensor {
  std::string name, dtype;
  std::vector<size_t> shape;  // outermost first; empty: a scalar
  size_t elements = 0, bytes = 0;
  size_t begin = 0;  // from the data section
  const unsigned char* data = nullptr;
};

struct SafetensorsFile {
  std::vector<SafetensorsTensor> tensors;  // in header order
  std::map<std::string, size_t> index;
  std::vector<std::pair<std::string, std::string>> metadata;
  size_t data_offset = 0;

  const SafetensorsTensor* tensor(const std::string& name) const {
    const auto it = index.find(name);
    return it == index.end() ? nullptr : &tensors[it->second];
  }
};

// Parses a safetensors file of `size` bytes at `bytes` (kept alive by the
// caller: tensors point into it).
inline Status parse_safetensors(const void* bytes, size_t size, SafetensorsFile* out) {
  if (!out) return fail(Status::kNullPointer, "safetensors: no output");
  if (!bytes && size) return fail(Status::kNullPointer, "safetensors: no bytes");
  ByteReader r(static_cast<const unsigned char*>(bytes), size);
  const uint64_t n = r.u64();
  if (!r.ok()) return fail(Status::kShapeMismatch, "safetensors: shorter than its 8-byte header length");
  if (n > kSafetensorsMaxHeader) {
    return fail(Status::kInvalidArgument, "safetensors: a header of %llu bytes (more than 100 MB: not this format?)",
                static_cast<unsigned long long>(n));
  }
  const char* text = reinterpret_cast<const char*>(r.take(static_cast<size_t>(n)));
  if (!text) {
    return fail(Status::kShapeMismatch, "safetensors: the header claims %llu bytes, %zu follow (truncated?)",
                static_cast<unsigned long long>(n), size - 8);
  }
  JsonValue root;
  Status st = parse_json(text, static_cast<size_t>(n), &root);
  if (st != Status::kOk) {
    const std::string why = last_error();
    return fail(Status::kInvalidArgument, "safetensors: header: %s", why.c_str());
  }
  if (root.kind != JsonValue::kObject) return fail(Status::kInvalidArgument, "safetensors: the header is not a JSON object");
  SafetensorsFile f;
  f.data_offset = 8 + static_cast<size_t>(n);
  const size_t data_bytes = size - f.data_offset;
  const unsigned char* data = static_cast<const unsigned char*>(bytes) + f.data_offset;
  for (size_t i = 0; i < root.keys.size(); ++i) {
    const std::string& name = root.keys[i];
    const JsonValue& e = root.items[i];
    if (name == "__metadata__") {
      if (e.kind != JsonValue::kObject) return fail(Status::kInvalidArgument, "safetensors: __metadata__ is not an object");
      for (size_t m = 0; m < e.keys.size(); ++m) {
        if (e.items[m].kind != JsonValue::kString) {
          return fail(Status::kInvalidArgument, "safetensors: __metadata__.%s is not a string", e.keys[m].c_str());
        }
        f.metadata.emplace_back(e.keys[m], e.items[m].text);
      }
      continue;
    }
    const JsonValue* dtype = e.get("dtype");
    const JsonValue* shape = e.get("shape");
    const JsonValue* offsets = e.get("data_offsets");
    if (e.kind != JsonValue::kObject || !dtype || dtype->kind != JsonValue::kString || !shape ||
        shape->kind != JsonValue::kArray || !offsets || offsets->kind != JsonValue::kArray || offsets->items.size() != 2) {
      return fail(Status::kInvalidArgument, "safetensors: tensor %s: needs a dtype string, a shape array and two data_offsets",
                  name.c_str());
    }
    SafetensorsTensor t;
    t.name = name;
    t.dtype = dtype->text;
    const size_t eb = safetensors_dtype_bytes(t.dtype);
    if (!eb) return fail(Status::kUnsupported, "safetensors: tensor %s has dtype %s, which this loader does not know", name.c_str(), t.dtype.c_str());
    if (shape->items.size() > kSafetensorsMaxDims) {
      return fail(Status::kInvalidArgument, "safetensors: tensor %s has %zu dimensions", name.c_str(), shape->items.size());
    }
    t.elements = 1;
    for (const JsonValue& d : shape->items) {
      size_t dim;
      if (!d.as_size(&dim)) return fail(Status::kInvalidArgument, "safetensors: tensor %s: a dimension is not a count", name.c_str());
      if (!detail::mul_fits(t.elements, dim, &t.elements)) return fail(Status::kOverflow, "safetensors: tensor %s: its elements overflow", name.c_str());
      t.shape.push_back(dim);
    }
    size_t begin, end;
    if (!offsets->items[0].as_size(&begin) || !offsets->items[1].as_size(&end) || end < begin) {
      return fail(Status::kInvalidArgument, "safetensors: tensor %s: data_offsets are not [begin, end] with begin <= end", name.c_str());
    }
    if (!detail::mul_fits(t.elements, eb, &t.bytes) || t.bytes != end - begin) {
      return fail(Status::kShapeMismatch, "safetensors: tensor %s: %zu bytes for %zu %s values", name.c_str(), end - begin,
                  t.elements, t.dtype.c_str());
    }
    if (end > data_bytes) {
      return fail(Status::kShapeMismatch, "safetensors: tensor %s (bytes %zu to %zu) runs past the end of the file (truncated?)",
                  name.c_str(), begin, end);
    }
    t.begin = begin;
    t.data = data + begin;
    f.index.emplace(name, f.tensors.size());  // the JSON parse refused duplicate keys
    f.tensors.push_back(std::move(t));
  }
  // No two tensors share bytes (the format's rule; a file that breaks it was
  // not written by a safetensors writer).
  std::vector<std::pair<size_t, size_t>> ranges;
  for (const SafetensorsTensor& t : f.tensors) {
    if (t.bytes) ranges.emplace_back(t.begin, t.begin + t.bytes);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) {
    if (ranges[i].first < ranges[i - 1].second) return fail(Status::kInvalidArgument, "safetensors: two tensors overlap");
  }
  *out = std::move(f);
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_LOADERS_SAFETENSORS_H_
