// Writes a random checkpoint and tokenizer in llama2.c's format, so the
// llama2c example runs in CI without downloading a model:
//
//   make_random_checkpoint model.bin tokenizer.bin [dim hidden layers heads kv_heads vocab seq_len [seed [unshared]]]
//
// Defaults: the 15M-parameter shape of llama2.c's stories15M (288, 768, 6, 6,
// 6, 32000, 256). Weights have variance 1/fan-in and norm weights lie in
// [0.5, 1.5], so activations stay O(1). The vocabulary is llama2.c's frame
// (<unk>, <s>, </s>, 256 byte tokens), printable ASCII, then merges of earlier
// tokens scored by order.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tilekit/loaders/llama2c.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s model.bin tokenizer.bin [dim hidden layers heads kv_heads vocab seq_len [seed [unshared]]]\n", argv[0]);
    return 2;
  }
  int v[7] = {288, 768, 6, 6, 6, 32000, 256};
  for (int i = 0; i < 7 && 3 + i < argc; ++i) v[i] = std::atoi(argv[3 + i]);
  const unsigned seed = argc > 10 ? static_cast<unsigned>(std::strtoul(argv[10], nullptr, 10)) : 1;
  const bool unshared = argc > 11 && std::atoi(argv[11]) != 0;
  tilekit::Llama2cHeader h{v[0], v[1], v[2], v[3], v[4], unshared ? -v[5] : v[5], v[6]};
  tilekit::LlamaConfig c;
  if (tilekit::llama2c_config(h, &c) != tilekit::Status::kOk) {
    std::fprintf(stderr, "make_random_checkpoint: %s\n", tilekit::last_error());
    return 1;
  }
  if (c.vocab < 259 + 95) {
    std::fprintf(stderr, "make_random_checkpoint: vocab must be >= 354 (specials, bytes, printable ASCII)\n");
    return 1;
  }
  size_t count = 0;
  tilekit::llama2c_floats(c, &count);
  std::vector<float> data(count);
  tilekit::LlamaWeights w;
  tilekit::llama2c_weights(c, data.data(), &w);
  std::mt19937 rng(seed);
  auto fill = [&](const float* p, size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    float* q = data.data() + (p - data.data());
    for (size_t i = 0; i < n; ++i) q[i] = d(rng);
  };
  const size_t D = c.dim, H = c.hidden, qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
  const float sd = std::sqrt(3.f / D), sq = std::sqrt(3.f / qd), sh = std::sqrt(3.f / H);
  fill(w.embedding, c.vocab * D, -1.f, 1.f);
  for (const tilekit::LlamaLayerWeights& l : w.layers) {
    fill(l.attn_norm, D, 0.5f, 1.5f);
    fill(l.ffn_norm, D, 0.5f, 1.5f);
    fill(l.wq, qd * D, -sd, sd);
    fill(l.wk, kvd * D, -sd, sd);
    fill(l.wv, kvd * D, -sd, sd);
    fill(l.wo, D * qd, -sq, sq);
    fill(l.w1, H * D, -sd, sd);
    fill(l.w3, H * D, -sd, sd);
    fill(l.w2, D * H, -sh, sh);
  }
  fill(w.final_norm, D, 0.5f, 1.5f);
  if (unshared) fill(w.classifier, c.vocab * D, -sd, sd);
  if (tilekit::save_llama2c(argv[1], h, data.data(), data.size()) != tilekit::Status::kOk) {
    std::fprintf(stderr, "make_random_checkpoint: %s\n", tilekit::last_error());
    return 1;
  }

  std::vector<std::string> vocab = {"<unk>", "\n<s>\n", "\n</s>\n"};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof(buf), "<0x%02X>", b);
    vocab.push_back(buf);
  }
  std::set<std::string> seen(vocab.begin(), vocab.end());
  const size_t first_char = vocab.size();
  for (char ch = ' '; ch <= '~'; ++ch) vocab.push_back(std::string(1, ch)), seen.insert(vocab.back());
  std::uniform_int_distribution<size_t> pick(first_char, first_char + 94);
  while (vocab.size() < c.vocab) {
    // Merges of two earlier tokens, preferring short ones, as BPE grows.
    const size_t limit = vocab.size() < first_char + 2000 ? vocab.size() : first_char + 2000;
    std::uniform_int_distribution<size_t> any(first_char, limit - 1);
    std::string s = vocab[any(rng)] + vocab[pick(rng)];
    if (s.size() <= 16 && seen.insert(s).second) vocab.push_back(s);
  }
  std::FILE* f = std::fopen(argv[2], "wb");
  if (!f) {
    std::fprintf(stderr, "make_random_checkpoint: cannot create %s\n", argv[2]);
    return 1;
  }
  int32_t max_len = 0;
  for (const std::string& s : vocab) max_len = std::max<int32_t>(max_len, static_cast<int32_t>(s.size()));
  std::fwrite(&max_len, 4, 1, f);
  for (size_t i = 0; i < vocab.size(); ++i) {
    const float score = i < first_char + 95 ? 0.f : -static_cast<float>(i);
    const int32_t len = static_cast<int32_t>(vocab[i].size());
    std::fwrite(&score, 4, 1, f);
    std::fwrite(&len, 4, 1, f);
    std::fwrite(vocab[i].data(), 1, vocab[i].size(), f);
  }
  if (std::fclose(f) != 0) return 1;
  std::printf("wrote %s (%zu parameters, %s classifier) and %s (%zu tokens)\n", argv[1], count, unshared ? "own" : "tied",
              argv[2], vocab.size());
  return 0;
}
