// Token ids to text from a GGUF file's vocabulary (tokenizer.ggml.tokens), for
// examples/load_model: pieces only, no encoder. "llama" (SentencePiece)
// pieces write a space as U+2581 and bytes as <0xXX>; "gpt2" (byte-level BPE,
// Llama 3) pieces spell each byte as one code point of GPT-2's
// bytes_to_unicode table. Other tokenizers, and checkpoints without a
// vocabulary (safetensors: tokenizer.json is not read), print ids.
#ifndef TILEKIT_EXAMPLES_LOAD_MODEL_TOKEN_TEXT_H_
#define TILEKIT_EXAMPLES_LOAD_MODEL_TOKEN_TEXT_H_

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

class TokenText {
 public:
  TokenText(const std::vector<std::string>* pieces, const std::string& model)
      : pieces_(pieces), spm_(model == "llama"), gpt2_(model == "gpt2") {
    // GPT-2's table: printable Latin-1 bytes are their own code point, the
    // other 68 bytes take 256, 257, ... in byte order.
    std::fill(byte_of_, byte_of_ + 512, -1);
    int next = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      byte_of_[printable ? b : next++] = b;
    }
  }
  bool has_text() const { return pieces_ && !pieces_->empty() && (spm_ || gpt2_); }

  std::string text(int32_t id) const {
    if (!has_text() || id < 0 || static_cast<size_t>(id) >= pieces_->size()) return "[" + std::to_string(id) + "]";
    const std::string& p = (*pieces_)[id];
    if (spm_) {
      if (p.size() == 6 && p.compare(0, 3, "<0x") == 0 && p[5] == '>') {
        return std::string(1, static_cast<char>(std::strtol(p.substr(3, 2).c_str(), nullptr, 16)));
      }
      std::string out;
      for (size_t i = 0; i < p.size(); ++i) {
        if (p.compare(i, 3, "\xE2\x96\x81") == 0) {  // U+2581, SentencePiece's space
          out += ' ';
          i += 2;
        } else {
          out += p[i];
        }
      }
      return out;
    }
    std::string out;  // gpt2: each code point back to its byte
    for (size_t i = 0; i < p.size();) {
      const unsigned char c = static_cast<unsigned char>(p[i]);
      uint32_t cp = c;
      size_t n = 1;
      if (c >= 0xC0 && c < 0xE0 && i + 1 < p.size()) cp = (c & 0x1F) << 6 | (p[i + 1] & 0x3F), n = 2;
      i += n;
      out += cp < 512 && byte_of_[cp] >= 0 ? static_cast<char>(byte_of_[cp]) : '?';
    }
    return out;
  }

 private:
  const std::vector<std::string>* pieces_;
  bool spm_, gpt2_;
  int byte_of_[512];  // a gpt2 piece's code point: its byte, or -1
};

#endif  // TILEKIT_EXAMPLES_LOAD_MODEL_TOKEN_TEXT_H_
