// llama2.c's tokenizer.bin: int32 max_token_length, then per token a float
// score, an int32 byte length and the bytes. Encoding as run.c does: BOS, a
// dummy-prefix space, one token per UTF-8 character (bytes as <0xXX> tokens 3 +
// byte when missing), then merging the adjacent pair whose concatenation is
// the best-scored token until none is.
#ifndef TILEKIT_EXAMPLES_LLAMA2C_TOKENIZER_H_
#define TILEKIT_EXAMPLES_LLAMA2C_TOKENIZER_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

struct Tokenizer {
  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::unordered_map<std::string, int32_t> ids;
  static constexpr int32_t kBos = 1;

  // Empty string on success, else the reason.
  std::string load(const char* path, size_t vocab) {
    std::FILE* f = std::fopen(path, "rb");
    if (!f) return std::string("cannot open ") + path;
    int32_t max_len = 0;
    std::string err;
    if (std::fread(&max_len, 4, 1, f) != 1) err = "no header";
    for (size_t i = 0; err.empty() && i < vocab; ++i) {
      float score;
      int32_t len;
      if (std::fread(&score, 4, 1, f) != 1 || std::fread(&len, 4, 1, f) != 1 || len < 0 || len > max_len) {
        err = "truncated or corrupt at token " + std::to_string(i);
        break;
      }
      std::string s(static_cast<size_t>(len), '\0');
      if (len && std::fread(&s[0], 1, s.size(), f) != s.size()) err = "truncated at token " + std::to_string(i);
      pieces.push_back(s);
      scores.push_back(score);
      ids.emplace(s, static_cast<int32_t>(i));
    }
    std::fclose(f);
    return err;
  }

  std::vector<int32_t> encode(const std::string& text) const {
    std::vector<int32_t> t{kBos};
    if (text.empty()) return t;
    if (auto it = ids.find(" "); it != ids.end()) t.push_back(it->second);
    for (size_t i = 0; i < text.size();) {
      size_t n = 1;
      while (i + n < text.size() && n < 4 && (static_cast<unsigned char>(text[i + n]) & 0xC0) == 0x80) ++n;
      const auto it = ids.find(text.substr(i, n));
      if (it != ids.end()) {
        t.push_back(it->second);
      } else {
        for (size_t b = 0; b < n; ++b) t.push_back(3 + static_cast<unsigned char>(text[i + b]));
      }
      i += n;
    }
    for (;;) {
      float best = -1e10f;
      int32_t best_id = -1;
      size_t at = 0;
      for (size_t i = 1; i + 1 < t.size(); ++i) {
        const auto it = ids.find(pieces[t[i]] + pieces[t[i + 1]]);
        if (it != ids.end() && scores[it->second] > best) best = scores[it->second], best_id = it->second, at = i;
      }
      if (best_id < 0) break;
      t[at] = best_id;
      t.erase(t.begin() + static_cast<long>(at) + 1);
    }
    return t;
  }

  std::string decode(int32_t prev, int32_t token) const {
    std::string p = pieces[token];
    if (prev == kBos && !p.empty() && p[0] == ' ') p.erase(0, 1);
    unsigned byte;
    if (p.size() == 6 && std::sscanf(p.c_str(), "<0x%02X>", &byte) == 1) return std::string(1, static_cast<char>(byte));
    return p;
  }
};

#endif  // TILEKIT_EXAMPLES_LLAMA2C_TOKENIZER_H_
