// Writes a random model of a decoder family as a GGUF file or a Hugging Face
// checkpoint directory (config.json + model.safetensors), so
// examples/load_model runs in CI without downloading a model
// (loaders/writers.h):
//
//   make_random_model gguf model.gguf f32|f16|bf16|q8_0|q4_0 [dim hidden layers heads kv_heads vocab positions [seed [untied [family]]]]
//   make_random_model hf   dir        f32|f16|bf16           [the same]
//
// family: llama (default), mistral (HF only: llama.cpp files Mistral as
// llama), qwen2, qwen3, gemma2, gemma3, with each format's names and
// conventions (loaders/architectures.h): Qwen2's q / k / v biases, q / k
// norms, Gemma's sandwich norms and its norms as w (HF) or 1 + w (GGUF);
// windows of positions / 4 (Gemma 2: every other layer; Gemma 3: five in
// six, local theta 10000), Gemma 2's softcaps 50 / 30, Gemma's
// query_pre_attn_scalar = head_dim (what llama.cpp assumes of GGUF files).
//
// Defaults: dim 256, hidden 768, 4 layers, 8 / 4 heads, vocab 512, 256
// positions. Weights have variance 1/fan-in, norm weights lie in [0.5, 1.5]
// (activations stay O(1)). GGUF files get llama.cpp's layout: Q and K rows
// permuted for interleaved RoPE, norms in F32, and a SentencePiece-style
// vocabulary (<unk>, <s>, </s>, "▁w<i>" pieces) for the example to spell.
// Q8_0 / Q4_0 need every K (dim, hidden) a multiple of 32.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <sys/stat.h>

#include "tilekit/graph/llama.h"
#include "tilekit/loaders/writers.h"
#include "tilekit/tilekit.h"

namespace {

// llama.cpp's convert permutation of Q / K rows: per head, row a·hd/2 + j
// (HF's half-split pair) moves to 2j + a (an adjacent pair).
std::vector<float> Permute(const std::vector<float>& w, size_t n, size_t k, size_t heads) {
  std::vector<float> out(w.size());
  const size_t hd = n / heads;
  for (size_t h = 0; h < heads; ++h)
    for (size_t j = 0; j < hd / 2; ++j)
      for (size_t a = 0; a < 2; ++a)
        std::copy_n(&w[(h * hd + a * hd / 2 + j) * k], k, &out[(h * hd + 2 * j + a) * k]);
  return out;
}

std::vector<unsigned char> Store(const std::vector<float>& x, size_t n, size_t k, const std::string& type) {
  if (type == "q8_0") return tilekit::quantize_q8_0(x.data(), n, k);
  if (type == "q4_0") return tilekit::quantize_q4_0(x.data(), n, k);
  if (type == "f32") return tilekit::as_bytes(x);
  std::vector<uint16_t> h(x.size());
  for (size_t i = 0; i < x.size(); ++i) h[i] = type == "f16" ? tilekit::f32_to_f16(x[i]) : tilekit::f32_to_bf16(x[i]).bits;
  return tilekit::as_bytes(h);
}

}  // namespace

int main(int argc, char** argv) {
  const std::string format = argc > 1 ? argv[1] : "", type = argc > 3 ? argv[3] : "", family = argc > 13 ? argv[13] : "llama";
  const bool gguf = format == "gguf";
  const bool type_ok = type == "f32" || type == "f16" || type == "bf16" || (gguf && (type == "q8_0" || type == "q4_0"));
  // family: its DecoderFamily, GGUF architecture and HF class.
  struct Family {
    const char* name;
    tilekit::DecoderFamily family;
    const char* gguf;
    const char* hf;
  };
  const Family families[] = {
      {"llama", tilekit::DecoderFamily::kLlama, "llama", "LlamaForCausalLM"},
      {"mistral", tilekit::DecoderFamily::kMistral, nullptr, "MistralForCausalLM"},
      {"qwen2", tilekit::DecoderFamily::kQwen2, "qwen2", "Qwen2ForCausalLM"},
      {"qwen3", tilekit::DecoderFamily::kQwen3, "qwen3", "Qwen3ForCausalLM"},
      {"gemma2", tilekit::DecoderFamily::kGemma2, "gemma2", "Gemma2ForCausalLM"},
      {"gemma3", tilekit::DecoderFamily::kGemma3, "gemma3", "Gemma3ForCausalLM"},
  };
  const Family* fam = nullptr;
  for (const Family& f : families) fam = family == f.name && (!gguf || f.gguf) ? &f : fam;
  if (argc < 4 || (!gguf && format != "hf") || !type_ok || !fam) {
    std::fprintf(stderr,
                 "usage: %s gguf model.gguf f32|f16|bf16|q8_0|q4_0 [dim hidden layers heads kv_heads vocab positions [seed [untied [family]]]]\n"
                 "       %s hf dir f32|f16|bf16 [the same]\n"
                 "family: llama, mistral (hf only), qwen2, qwen3, gemma2, gemma3\n",
                 argv[0], argv[0]);
    return 2;
  }
  size_t v[7] = {256, 768, 4, 8, 4, 512, 256};
  for (int i = 0; i < 7 && 4 + i < argc; ++i) v[i] = std::strtoul(argv[4 + i], nullptr, 10);
  const unsigned seed = argc > 11 ? static_cast<unsigned>(std::strtoul(argv[11], nullptr, 10)) : 1;
  tilekit::LlamaConfig c;
  c.dim = v[0], c.hidden = v[1], c.layers = v[2], c.heads = v[3], c.kv_heads = v[4], c.vocab = v[5], c.max_seq_len = v[6];
  c.tied_embeddings = !(argc > 12 && std::atoi(argv[12]) != 0);
  tilekit::set_family(&c, fam->family);
  const bool gemma = c.norm_weight_offset, llama = fam->family == tilekit::DecoderFamily::kLlama;
  if (!llama && fam->family != tilekit::DecoderFamily::kQwen2 && fam->family != tilekit::DecoderFamily::kQwen3) {
    c.sliding_window = std::max<size_t>(c.max_seq_len / 4, 1);
  }
  if (gemma) {
    c.sliding_window_pattern = fam->family == tilekit::DecoderFamily::kGemma2 ? 2 : 6;
    c.query_pre_attn_scalar = static_cast<float>(c.head_dim());
  }
  if (fam->family == tilekit::DecoderFamily::kGemma2) c.attn_softcap = 50.f, c.final_softcap = 30.f;
  if (fam->family == tilekit::DecoderFamily::kGemma3) c.rope.theta = 1e6, c.rope_local_theta = 10000.0;
  if (tilekit::check_llama_config(c) != tilekit::Status::kOk) {
    std::fprintf(stderr, "make_random_model: %s\n", tilekit::last_error());
    return 1;
  }
  if ((type == "q8_0" || type == "q4_0") && (c.dim % 32 || c.hidden % 32)) {
    std::fprintf(stderr, "make_random_model: %s needs dim and hidden multiples of 32\n", type.c_str());
    return 1;
  }
  const size_t D = c.dim, H = c.hidden, qd = c.heads * c.head_dim(), kvd = c.kv_heads * c.head_dim();
  std::mt19937 rng(seed);
  const auto random = [&](size_t n, float lo, float hi) {
    std::uniform_real_distribution<float> d(lo, hi);
    std::vector<float> x(n);
    for (float& f : x) f = d(rng);
    return x;
  };
  tilekit::GgufWriter g;
  tilekit::SafetensorsWriter s;
  const char* dtype = type == "f32" ? "F32" : type == "f16" ? "F16" : "BF16";
  const uint32_t ggml = type == "f32" ? 0 : type == "f16" ? 1 : type == "bf16" ? 30 : type == "q8_0" ? 8 : 2;
  // One tensor: [n][k] (k = 0: a vector of n); permute: Q / K's heads
  // (GGUF llama only).
  const auto add = [&](const std::string& gguf_name, const std::string& hf_name, std::vector<float> x, size_t n, size_t k,
                       size_t permute) {
    if (!gguf) {
      s.add(hf_name, dtype, k ? std::vector<size_t>{n, k} : std::vector<size_t>{n}, Store(x, k ? n : 1, k ? k : n, type));
      return;
    }
    if (permute && llama) x = Permute(x, n, k, permute);
    if (!k) {
      g.add_tensor(gguf_name, 0, {n}, tilekit::as_bytes(x));  // norms stay F32, as llama.cpp's convert keeps them
    } else {
      g.add_tensor(gguf_name, ggml, {k, n}, Store(x, n, k, type));
    }
  };
  const float sd = std::sqrt(3.f / D), sq = std::sqrt(3.f / qd), sh = std::sqrt(3.f / H);
  // Norm weights scaling by [0.5, 1.5]: w, or 1 + w stored as w (HF Gemma).
  const auto norm = [&](size_t n) {
    std::vector<float> x = random(n, 0.5f, 1.5f);
    if (gemma && !gguf) {
      for (float& f : x) f -= 1.f;
    }
    return x;
  };
  add("token_embd.weight", "model.embed_tokens.weight", random(c.vocab * D, -1.f, 1.f), c.vocab, D, 0);
  for (size_t l = 0; l < c.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".", m = "model.layers." + std::to_string(l) + ".";
    const size_t hd = c.head_dim();
    add(b + "attn_norm.weight", m + "input_layernorm.weight", norm(D), D, 0, 0);
    add(b + "attn_q.weight", m + "self_attn.q_proj.weight", random(qd * D, -sd, sd), qd, D, c.heads);
    add(b + "attn_k.weight", m + "self_attn.k_proj.weight", random(kvd * D, -sd, sd), kvd, D, c.kv_heads);
    add(b + "attn_v.weight", m + "self_attn.v_proj.weight", random(kvd * D, -sd, sd), kvd, D, 0);
    add(b + "attn_output.weight", m + "self_attn.o_proj.weight", random(D * qd, -sq, sq), D, qd, 0);
    add(b + "ffn_norm.weight", m + (gemma ? "pre_feedforward_layernorm.weight" : "post_attention_layernorm.weight"), norm(D), D, 0, 0);
    add(b + "ffn_gate.weight", m + "mlp.gate_proj.weight", random(H * D, -sd, sd), H, D, 0);
    add(b + "ffn_down.weight", m + "mlp.down_proj.weight", random(D * H, -sh, sh), D, H, 0);
    add(b + "ffn_up.weight", m + "mlp.up_proj.weight", random(H * D, -sd, sd), H, D, 0);
    if (c.qkv_bias) {
      add(b + "attn_q.bias", m + "self_attn.q_proj.bias", random(qd, -0.5f, 0.5f), qd, 0, 0);
      add(b + "attn_k.bias", m + "self_attn.k_proj.bias", random(kvd, -0.5f, 0.5f), kvd, 0, 0);
      add(b + "attn_v.bias", m + "self_attn.v_proj.bias", random(kvd, -0.5f, 0.5f), kvd, 0, 0);
    }
    if (c.qk_norm) {
      add(b + "attn_q_norm.weight", m + "self_attn.q_norm.weight", norm(hd), hd, 0, 0);
      add(b + "attn_k_norm.weight", m + "self_attn.k_norm.weight", norm(hd), hd, 0, 0);
    }
    if (c.sandwich_norms) {
      add(b + "post_attention_norm.weight", m + "post_attention_layernorm.weight", norm(D), D, 0, 0);
      add(b + "post_ffw_norm.weight", m + "post_feedforward_layernorm.weight", norm(D), D, 0, 0);
    }
  }
  add("output_norm.weight", "model.norm.weight", norm(D), D, 0, 0);
  if (!c.tied_embeddings) add("output.weight", "lm_head.weight", random(c.vocab * D, -sd, sd), c.vocab, D, 0);

  tilekit::Status st;
  if (gguf) {
    tilekit::add_gguf_model_keys(g, c, fam->gguf);
    std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
    for (size_t i = pieces.size(); i < c.vocab; ++i) pieces.push_back("\xE2\x96\x81w" + std::to_string(i));
    pieces.resize(c.vocab);
    g.add_string("tokenizer.ggml.model", "llama");
    g.add_strings("tokenizer.ggml.tokens", pieces);
    g.add_u32("tokenizer.ggml.bos_token_id", 1);
    g.add_u32("tokenizer.ggml.eos_token_id", 2);
    st = g.write(argv[2]);
  } else {
    ::mkdir(argv[2], 0755);
    const std::string dir = argv[2];
    const std::string text = tilekit::hf_config_json(c, fam->hf) + "\n";
    st = tilekit::write_file((dir + "/config.json").c_str(), std::vector<unsigned char>(text.begin(), text.end()));
    if (st == tilekit::Status::kOk) st = s.write((dir + "/model.safetensors").c_str());
  }
  if (st != tilekit::Status::kOk) {
    std::fprintf(stderr, "make_random_model: %s\n", tilekit::last_error());
    return 1;
  }
  return 0;
}
