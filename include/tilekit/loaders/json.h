// Just enough JSON (RFC 8259) for a safetensors header and a Hugging Face
// config.json: a parse into a small tree of values. Strict: one value and
// nothing after it but whitespace, no trailing commas, no comments, duplicate
// keys refused (a safetensors header naming one tensor twice must not be
// resolved silently), nesting at most 64 deep (no stack exhaustion from a
// hostile file). Numbers keep their text and their double value; \uXXXX
// escapes (surrogate pairs included) become UTF-8.
#ifndef TILEKIT_LOADERS_JSON_H_
#define TILEKIT_LOADERS_JSON_H_

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tilekit/base/status.h"

namespace tilekit {

struct JsonValue {
  enum Kind : uint8_t { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = kNull;
  bool boolean = false;
  double number = 0;
  std::string text;  // a string's value, or a number's text
  std::vector<JsonValue> items;  // array elements, or object values
  std::vector<std::string> keys;  // object keys, in file order (items[i] is keys[i]'s)

  // An object's member, or null.
  const JsonValue* get(const char* key) const {
    if (kind != kObject) return nullptr;
    for (size_t i = 0; i < keys.size(); ++i) {
      if (keys[i] == key) return &items[i];
    }
    return nullptr;
  }
  // A number that is a non-negative integer below 2^53 (exact in a double).
  bool as_size(size_t* out) const {
    if (kind != kNumber || !(number >= 0) || number > 9007199254740992.0 || number != std::floor(number)) return false;
    *out = static_cast<size_t>(number);
    return true;
  }
};

namespace json_detail {

class Parser {
 public:
  Parser(const char* p, size_t n) : p_(p), end_(p + n) {}

  Status parse(JsonValue* out) {
    ws();
    if (!value(out, 0)) return error();
    ws();
    if (p_ != end_) {
      why_ = "text after the value";
      return error();
    }
    return Status::kOk;
  }

 private:
  Status error() const {
    return fail(Status::kInvalidArgument, "json: %s at byte %zu", why_, static_cast<size_t>(p_ - start_()));
  }
  const char* start_() const { return end_ - total_; }

  void ws() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool literal(const char* word) {
    for (const char* w = word; *w; ++w, ++p_) {
      if (p_ == end_ || *p_ != *w) return bad("an unknown literal");
    }
    return true;
  }
  bool bad(const char* why) {
    why_ = why;
    return false;
  }

  bool value(JsonValue* v, int depth) {
    if (depth > 64) return bad("nesting deeper than 64");
    if (p_ == end_) return bad("the text ends where a value should be");
    switch (*p_) {
      case '{': return object(v, depth);
      case '[': return array(v, depth);
      case '"': v->kind = JsonValue::kString; return string(&v->text);
      case 't': v->kind = JsonValue::kBool; v->boolean = true; return literal("true");
      case 'f': v->kind = JsonValue::kBool; v->boolean = false; return literal("false");
      case 'n': v->kind = JsonValue::kNull; return literal("null");
      default: return number(v);
    }
  }

  bool object(JsonValue* v, int depth) {
    v->kind = JsonValue::kObject;
    ++p_;
    ws();
    if (p_ != end_ && *p_ == '}') return ++p_, true;
    std::set<std::string> seen;  // a header of n tensors: n log n, not n²
    for (;;) {
      ws();
      if (p_ == end_ || *p_ != '"') return bad("an object key must be a string");
      std::string key;
      if (!string(&key)) return false;
      if (!seen.insert(key).second) return bad("a key appears twice in one object");
      ws();
      if (p_ == end_ || *p_ != ':') return bad("':' expected");
      ++p_;
      ws();
      v->keys.push_back(std::move(key));
      v->items.emplace_back();
      if (!value(&v->items.back(), depth + 1)) return false;
      ws();
      if (p_ != end_ && *p_ == ',') { ++p_; continue; }
      if (p_ != end_ && *p_ == '}') return ++p_, true;
      return bad("',' or '}' expected");
    }
  }

  bool array(JsonValue* v, int depth) {
    v->kind = JsonValue::kArray;
    ++p_;
    ws();
    if (p_ != end_ && *p_ == ']') return ++p_, true;
    for (;;) {
      ws();
      v->items.emplace_back();
      if (!value(&v->items.back(), depth + 1)) return false;
      ws();
      if (p_ != end_ && *p_ == ',') { ++p_; continue; }
      if (p_ != end_ && *p_ == ']') return ++p_, true;
      return bad("',' or ']' expected");
    }
  }

  bool hex4(uint32_t* out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i, ++p_) {
      if (p_ == end_) return bad("a \\u escape is cut short");
      const char c = *p_;
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return bad("a \\u escape has a non-hex digit");
      v = v * 16 + static_cast<uint32_t>(d);
    }
    *out = v;
    return true;
  }
  static void utf8(uint32_t cp, std::string* s) {
    if (cp < 0x80) {
      s->push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      s->push_back(static_cast<char>(0xC0 | cp >> 6));
      s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      s->push_back(static_cast<char>(0xE0 | cp >> 12));
      s->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      s->push_back(static_cast<char>(0xF0 | cp >> 18));
      s->push_back(static_cast<char>(0x80 | (cp >> 12 & 0x3F)));
      s->push_back(static_cast<char>(0x80 | (cp >> 6 & 0x3F)));
      s->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  bool string(std::string* s) {
    ++p_;  // the opening quote
    for (;;) {
      if (p_ == end_) return bad("a string is not closed");
      const unsigned char c = static_cast<unsigned char>(*p_++);
      if (c == '"') return true;
      if (c < 0x20) return bad("a control character inside a string");
      if (c != '\\') {
        s->push_back(static_cast<char>(c));
        continue;
      }
      if (p_ == end_) return bad("a string is not closed");
      const char e = *p_++;
      switch (e) {
        case '"': case '\\': case '/': s->push_back(e); break;
        case 'b': s->push_back('\b'); break;
        case 'f': s->push_back('\f'); break;
        case 'n': s->push_back('\n'); break;
        case 'r': s->push_back('\r'); break;
        case 't': s->push_back('\t'); break;
        case 'u': {
          uint32_t cp;
          if (!hex4(&cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00) {  // a high surrogate: its low half must follow
            uint32_t lo;
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return bad("a lone surrogate");
            p_ += 2;
            if (!hex4(&lo)) return false;
            if (lo < 0xDC00 || lo >= 0xE000) return bad("a lone surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            return bad("a lone surrogate");
          }
          utf8(cp, s);
          break;
        }
        default: return bad("an unknown escape");
      }
    }
  }

  bool number(JsonValue* v) {
    const char* b = p_;
    if (p_ != end_ && *p_ == '-') ++p_;
    const auto digits = [&] {
      const char* d = p_;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      return p_ - d;
    };
    const char* int_start = p_;
    if (!digits()) return bad("a value expected");
    if (*int_start == '0' && p_ - int_start > 1) return bad("a number with a leading zero");
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return bad("digits expected after '.'");
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return bad("digits expected in an exponent");
    }
    v->kind = JsonValue::kNumber;
    v->text.assign(b, p_);
    v->number = std::strtod(v->text.c_str(), nullptr);  // the text is a valid JSON number, so strtod reads it all
    return true;
  }

  const char* p_;
  const char* end_;
  size_t total_ = static_cast<size_t>(end_ - p_);
  const char* why_ = "";
};

}  // namespace json_detail

// Parses `size` bytes of JSON text into *out (untouched on failure).
inline Status parse_json(const char* text, size_t size, JsonValue* out) {
  if (!out || (!text && size)) return fail(Status::kNullPointer, "json: no text or no output");
  JsonValue v;
  json_detail::Parser p(text, size);
  const Status st = p.parse(&v);
  if (st != Status::kOk) return st;
  *out = std::move(v);
  return Status::kOk;
}

}  // namespace tilekit

#endif  // TILEKIT_LOADERS_JSON_H_
