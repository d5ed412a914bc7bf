// Runs a llama2.c checkpoint (karpathy/llama2.c's model.bin and tokenizer.bin
// formats) on tilekit's graph executor: the prompt is prefilled in chunks, then
// tokens are generated greedily (temperature 0) or by top-p sampling, and the
// tokens/s of prefill and decode are printed.
//
//   llama2c model.bin tokenizer.bin [-i prompt] [-n tokens] [-t temperature] [-p top_p]
//           [-s seed] [-w f32|bf16|int8|int4] [-g group] [-j threads] [-c prefill_chunk]
//           [-q] (quiet: no text)
//
// -w int8 / int4 quantize every linear's weights at load (the classifier's
// too; the embedding table stays fp32), one scale per output column and -g
// K values (32, the default; 64, 128; or 0, all of K, for int8).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tilekit/loaders/llama2c.h"
#include "tilekit/tilekit.h"
#include "../common/weight_type_arg.h"
#include "tokenizer.h"

namespace {

// llama2.c's xorshift, so a seed replays a run.
struct Sampler {
  unsigned long long state;
  std::vector<std::pair<float, int32_t>> candidates;
  float next() {
    state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
    return static_cast<float>(((state * 0x2545F4914F6CDD1Dull) >> 32) >> 8) / 16777216.0f;
  }
  int32_t sample(const float* logits, size_t n, float temperature, float top_p) {
    if (temperature == 0.f) return static_cast<int32_t>(std::max_element(logits, logits + n) - logits);
    float mx = *std::max_element(logits, logits + n), sum = 0;
    candidates.resize(n);
    for (size_t i = 0; i < n; ++i) sum += candidates[i].first = std::exp((logits[i] - mx) / temperature);
    for (size_t i = 0; i < n; ++i) candidates[i] = {candidates[i].first / sum, static_cast<int32_t>(i)};
    // Top-p: the smallest set of most likely tokens whose mass reaches top_p.
    std::sort(candidates.begin(), candidates.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    size_t last = n - 1;
    float mass = 0;
    for (size_t i = 0; i < n; ++i) {
      mass += candidates[i].first;
      if (mass > top_p) {
        last = i;
        break;
      }
    }
    const float r = next() * mass;
    float cdf = 0;
    for (size_t i = 0; i <= last; ++i) {
      cdf += candidates[i].first;
      if (r < cdf) return candidates[i].second;
    }
    return candidates[last].second;
  }
};

// " (group 32)" for quantized weights.
std::string GroupNote(tilekit::WeightType type, size_t group) {
  if (!tilekit::is_quantized(type)) return "";
  return group ? " (group " + std::to_string(group) + ")" : " (one scale per column)";
}

int Fail(const char* what) {
  std::fprintf(stderr, "llama2c: %s: %s\n", what, tilekit::last_error());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr,
                 "usage: %s model.bin tokenizer.bin [-i prompt] [-n tokens] [-t temperature] [-p top_p] [-s seed]\n"
                 "       [-w f32|bf16|int8|int4] [-g group] [-j threads] [-c prefill_chunk] [-q]\n",
                 argv[0]);
    return 2;
  }
  std::string prompt = "Once upon a time";
  size_t steps = 32, threads = 1, chunk = 64, group = 32;
  float temperature = 0.f, top_p = 0.9f;
  unsigned long long seed = 42;
  bool quiet = false;
  tilekit::WeightType type = tilekit::WeightType::kF32;
  for (int i = 3; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-q") {
      quiet = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "llama2c: %s needs a value\n", argv[i]);
      return 2;
    }
    const char* v = argv[++i];
    if (flag == "-i") prompt = v;
    else if (flag == "-n") steps = std::strtoul(v, nullptr, 10);
    else if (flag == "-t") temperature = std::strtof(v, nullptr);
    else if (flag == "-p") top_p = std::strtof(v, nullptr);
    else if (flag == "-s") seed = std::strtoull(v, nullptr, 10);
    else if (flag == "-j") threads = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    else if (flag == "-c") chunk = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    else if (flag == "-g") group = std::strtoul(v, nullptr, 10);
    else if (flag == "-w" && ParseWeightType(v, &type)) continue;
    else {
      std::fprintf(stderr, "llama2c: unknown flag %s %s\n", flag.c_str(), v);
      return 2;
    }
  }

  tilekit::Llama2cCheckpoint ck;
  if (tilekit::load_llama2c(argv[1], &ck) != tilekit::Status::kOk) return Fail("checkpoint");
  const tilekit::LlamaConfig& c = ck.config;
  Tokenizer tok;
  const std::string terr = tok.load(argv[2], c.vocab);
  if (!terr.empty()) {
    std::fprintf(stderr, "llama2c: tokenizer %s: %s\n", argv[2], terr.c_str());
    return 1;
  }
  tilekit::ThreadPool pool(threads);
  tilekit::LlamaOptions opt;
  opt.max_tokens = std::min(chunk, c.max_seq_len);
  opt.weights = type;
  opt.weight_group = group;
  opt.pack_executor = &pool;
  tilekit::LlamaModel model;
  if (model.build(c, ck.weights, opt) != tilekit::Status::kOk) return Fail("build");
  const tilekit::GraphStats& st = model.graph().stats();
  std::fprintf(stderr,
               "model: dim %zu hidden %zu layers %zu heads %zu/%zu vocab %zu seq %zu, %s weights%s (%.1f MB packed, "
               "scales included), %zu threads\n"
               "graph: %zu kernel calls per step (%zu linears fused horizontally, %zu residual adds in GEMM stores), "
               "arena %.2f MB for %zu tokens (all %zu tensors apart: %.2f MB)\n",
               c.dim, c.hidden, c.layers, c.heads, c.kv_heads, c.vocab, c.max_seq_len, tilekit::weight_type_name(type),
               GroupNote(type, group).c_str(), st.packed_bytes / 1e6, threads, st.kernel_nodes, st.fused_linears, st.folded_adds, st.arena_bytes / 1e6,
               opt.max_tokens, st.tensors, st.intermediate_bytes / 1e6);

  std::vector<int32_t> tokens = tok.encode(prompt);
  if (tokens.size() + steps > c.max_seq_len) steps = c.max_seq_len > tokens.size() ? c.max_seq_len - tokens.size() : 0;
  if (tokens.size() > c.max_seq_len) {
    std::fprintf(stderr, "llama2c: the prompt has %zu tokens, the model at most %zu\n", tokens.size(), c.max_seq_len);
    return 1;
  }
  tilekit::KvSlot slot;
  if (slot.init(model.cache(), c.max_seq_len) != tilekit::Status::kOk) return Fail("cache");
  using clock = std::chrono::steady_clock;
  const auto t0 = clock::now();
  for (size_t at = 0; at < tokens.size(); at += opt.max_tokens) {
    const size_t n = std::min(opt.max_tokens, tokens.size() - at);
    if (model.forward(slot, tokens.data() + at, n, &pool) != tilekit::Status::kOk) return Fail("prefill");
  }
  const auto t1 = clock::now();
  Sampler sampler{seed ? seed : 1, {}};
  int32_t prev = tokens.back();
  if (!quiet) {
    for (size_t i = 1; i < tokens.size(); ++i) std::fputs(tok.decode(tokens[i - 1], tokens[i]).c_str(), stdout);
  }
  size_t generated = 0;
  for (; generated < steps; ++generated) {
    int32_t next = sampler.sample(model.logits().data, c.vocab, temperature, top_p);
    if (next == Tokenizer::kBos) break;  // llama2.c stops at BOS
    if (!quiet) {
      std::fputs(tok.decode(prev, next).c_str(), stdout);
      std::fflush(stdout);
    }
    prev = next;
    if (generated + 1 == steps) {
      ++generated;
      break;
    }
    if (model.forward(slot, &next, 1, &pool) != tilekit::Status::kOk) return Fail("decode");
  }
  const auto t2 = clock::now();
  const double pre = std::chrono::duration<double>(t1 - t0).count(), dec = std::chrono::duration<double>(t2 - t1).count();
  if (!quiet) std::printf("\n");
  std::printf("prefill: %zu tokens, %.1f tokens/s; decode: %zu tokens, %.1f tokens/s\n", tokens.size(),
              tokens.size() / pre, generated, generated > 1 ? (generated - 1) / dec : 0.0);
  return 0;
}
