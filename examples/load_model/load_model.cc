// Runs a GGUF file or a Hugging Face checkpoint directory (config.json +
// model.safetensors, or the shards of model.safetensors.index.json) on
// tilekit's graph executor (loaders/model.h): a prompt of token ids is
// prefilled in chunks, then tokens are generated greedily, printed as text
// when the file carries a vocabulary this example can spell (GGUF's
// tokenizer.ggml.tokens, "llama" or "gpt2" pieces; there is no encoder, so
// the prompt is ids) and as ids otherwise, with the tokens/s of prefill and
// decode.
//
//   load_model model.gguf|checkpoint_dir [-i id,id,...] [-n tokens] [-w f32|bf16|int8|int4]
//              [-g group] [-j threads] [-c prefill_chunk] [-l max_positions] [-q]
//
// -w int8 with a Q8_0 file (int4 with Q4_0), group 32, packs the file's blocks
// as stored; other combinations dequantize them exactly and pack as -w says.
// -l caps the positions served (default 512): a KV cache and RoPE table of
// a 128k-context model would be sized by it.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "tilekit/loaders/model.h"
#include "tilekit/tilekit.h"

#include "../common/weight_type_arg.h"
#include "token_text.h"

namespace {

int Fail(const char* what) {
  std::fprintf(stderr, "load_model: %s: %s\n", what, tilekit::last_error());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr,
                 "usage: %s model.gguf|checkpoint_dir [-i id,id,...] [-n tokens] [-w f32|bf16|int8|int4] [-g group]\n"
                 "       [-j threads] [-c prefill_chunk] [-l max_positions] [-q]\n",
                 argv[0]);
    return 2;
  }
  std::string ids;
  size_t steps = 32, threads = 1, chunk = 64;
  bool quiet = false;
  tilekit::LoadOptions lo;
  lo.max_seq_len = 512;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "-q") {
      quiet = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "load_model: %s needs a value\n", argv[i]);
      return 2;
    }
    const char* v = argv[++i];
    if (flag == "-i") ids = v;
    else if (flag == "-n") steps = std::strtoul(v, nullptr, 10);
    else if (flag == "-j") threads = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    else if (flag == "-c") chunk = std::max<size_t>(1, std::strtoul(v, nullptr, 10));
    else if (flag == "-g") lo.weight_group = std::strtoul(v, nullptr, 10);
    else if (flag == "-l") lo.max_seq_len = std::strtoul(v, nullptr, 10);
    else if (flag == "-w" && ParseWeightType(v, &lo.weights)) continue;
    else {
      std::fprintf(stderr, "load_model: unknown flag %s %s\n", flag.c_str(), v);
      return 2;
    }
  }
  using clock = std::chrono::steady_clock;
  const auto l0 = clock::now();
  tilekit::LoadedModel m;
  if (tilekit::load_model(argv[1], lo, &m) != tilekit::Status::kOk) return Fail(argv[1]);
  const tilekit::LlamaConfig& c = m.config;
  tilekit::ThreadPool pool(threads);
  tilekit::LlamaOptions opt;
  opt.max_tokens = std::min(chunk, c.max_seq_len);
  opt.weights = lo.weights;
  opt.weight_group = lo.weight_group;
  opt.pack_executor = &pool;
  tilekit::LlamaModel model;
  if (model.build(c, m.weights, opt) != tilekit::Status::kOk) return Fail("build");
  const double load_s = std::chrono::duration<double>(clock::now() - l0).count();
  std::fprintf(stderr,
               "%s %s: dim %zu hidden %zu layers %zu heads %zu/%zu vocab %zu positions %zu, rope %s theta %g, %s classifier\n"
               "tensors: %zu read in place, %zu packed from their stored type (bf16, Q8_0/Q4_0 blocks), %zu converted to fp32;\n"
               "%s weights, %.1f MB packed; loaded and packed in %.2f s, %zu threads\n",
               m.format == tilekit::ModelFormat::kGguf ? "gguf" : "safetensors", m.architecture.c_str(), c.dim, c.hidden,
               c.layers, c.heads, c.kv_heads, c.vocab, c.max_seq_len,
               c.rope.pairing == tilekit::RopePairing::kInterleaved ? "interleaved" : "half-split", c.rope.theta,
               c.tied_embeddings ? "tied" : "separate", m.mapped, m.packed_from_source, m.converted,
               tilekit::weight_type_name(lo.weights), model.graph().stats().packed_bytes / 1e6, load_s, threads);

  std::vector<int32_t> tokens;
  for (const char* p = ids.c_str(); *p;) {
    char* end;
    const long t = std::strtol(p, &end, 10);
    if (end == p || t < 0 || static_cast<size_t>(t) >= c.vocab) {
      std::fprintf(stderr, "load_model: -i wants token ids below %zu, comma-separated\n", c.vocab);
      return 2;
    }
    tokens.push_back(static_cast<int32_t>(t));
    p = *end == ',' ? end + 1 : end;
  }
  if (tokens.empty()) tokens.push_back(m.bos >= 0 ? m.bos : 0);
  if (tokens.size() > c.max_seq_len) {
    std::fprintf(stderr, "load_model: the prompt has %zu tokens, the model serves %zu positions\n", tokens.size(), c.max_seq_len);
    return 1;
  }
  steps = std::min(steps, c.max_seq_len - tokens.size());
  const TokenText text(&m.tokens, m.tokenizer);
  if (!text.has_text() && !quiet) std::fprintf(stderr, "no vocabulary this example spells: printing token ids\n");

  tilekit::KvSlot slot;
  if (slot.init(model.cache(), c.max_seq_len) != tilekit::Status::kOk) return Fail("cache");
  const auto t0 = clock::now();
  for (size_t at = 0; at < tokens.size(); at += opt.max_tokens) {
    const size_t n = std::min(opt.max_tokens, tokens.size() - at);
    if (model.forward(slot, tokens.data() + at, n, &pool) != tilekit::Status::kOk) return Fail("prefill");
  }
  const auto t1 = clock::now();
  if (!quiet) {
    for (int32_t t : tokens) std::fputs(text.text(t).c_str(), stdout);
  }
  size_t generated = 0;
  while (generated < steps) {
    const float* logits = model.logits().data;
    int32_t next = static_cast<int32_t>(std::max_element(logits, logits + c.vocab) - logits);  // greedy
    ++generated;
    if (!quiet) {
      std::fputs(text.text(next).c_str(), stdout);
      std::fflush(stdout);
    }
    if (next == m.eos || generated == steps) break;
    if (model.forward(slot, &next, 1, &pool) != tilekit::Status::kOk) return Fail("decode");
  }
  const auto t2 = clock::now();
  const double pre = std::chrono::duration<double>(t1 - t0).count(), dec = std::chrono::duration<double>(t2 - t1).count();
  if (!quiet) std::printf("\n");
  std::printf("prefill: %zu tokens, %.1f tokens/s; decode: %zu tokens, %.1f tokens/s\n", tokens.size(), tokens.size() / pre,
              generated, generated > 1 ? (generated - 1) / dec : 0.0);
  return 0;
}
