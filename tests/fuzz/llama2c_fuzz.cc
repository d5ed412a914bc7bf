// llama2.c checkpoints (load_llama2c_memory, load_llama2c_stream) from
// arbitrary bytes: either the bytes are the file, or the harness writes a
// header from a few decoded fields, a body of random weights for it, and one
// corruption: truncated at any point, trailing bytes, a header field set to an
// edge (0, negative, INT32_MIN/MAX, 2^15, 2^20: heads not dividing dim, kv
// heads not dividing heads, odd head_dim, counts whose floats overflow size_t),
// a NaN or Inf weight, or the fuzzer's own bytes as the body.
//
// Checks: a checkpoint is accepted exactly when its header is valid and the
// body holds the header's float count, computed here in 128-bit integers (so
// a header claiming 2^40 floats before a 100-byte body is refused, and
// allocates nothing: scripts/fuzz caps a malloc at 256 MB); a refusal has a
// message; memory and stream agree; an accepted checkpoint has the header's
// config, the body's bytes and the arrays where llama2.c puts them. Then the
// model builds and decodes a few tokens, bitwise equal on one thread and two;
// with the harness's random weights, the logits are within the fp64
// reference's bound (tests/llama_reference.h, as graph_test).
#include "../llama_reference.h"
#include "fuzz.h"
#include "tilekit/loaders/llama2c.h"

namespace tilekit {
namespace {

// Each header field as the format writes it.
enum Field { kDim, kHidden, kLayers, kHeads, kKvHeads, kVocab, kSeqLen, kFields };

// What a loader must conclude, from the format's definition (not from
// llama2c_config / llama2c_floats): the float count the header asks for, or
// none (-1) when the header is invalid.
__int128 ExpectedFloats(const int32_t h[kFields]) {
  for (int f = 0; f < kFields; ++f) {
    if (f != kVocab && h[f] <= 0) return -1;
  }
  if (h[kVocab] == 0 || h[kDim] % h[kHeads] || h[kHeads] % h[kKvHeads] || (h[kDim] / h[kHeads]) % 2) return -1;
  const __int128 D = h[kDim], H = h[kHidden], L = h[kLayers], hs = h[kDim] / h[kHeads], kvd = hs * h[kKvHeads];
  const __int128 V = h[kVocab] < 0 ? -static_cast<__int128>(h[kVocab]) : h[kVocab];
  if (V > INT32_MAX) return -1;
  const __int128 per_layer = D /*rms_att*/ + D * D /*wq*/ + 2 * kvd * D /*wk, wv*/ + D * D /*wo*/ + D /*rms_ffn*/ +
                             3 * H * D /*w1, w2, w3*/;
  return V * D * (h[kVocab] < 0 ? 2 : 1) + L * per_layer + D /*rms_final*/ + h[kSeqLen] * hs /*legacy RoPE*/;
}

struct File {
  std::vector<unsigned char> bytes;
  bool random_weights = false;  // the body is FillLlamaWeights' (the reference applies)
};

void PutHeader(File* f, const int32_t h[kFields]) {
  f->bytes.resize(std::max<size_t>(f->bytes.size(), 28));
  std::memcpy(f->bytes.data(), h, 28);
}

// A small valid header (every head count dividing, head_dim even), a body of
// random weights for it, then one corruption.
File Generate(FuzzedDataProvider& in) {
  const int32_t heads = in.ConsumeIntegralInRange<int32_t>(1, 4);
  int32_t kv = in.ConsumeIntegralInRange<int32_t>(1, heads);
  while (heads % kv) --kv;
  const int32_t hs = 2 * in.ConsumeIntegralInRange<int32_t>(1, 4);
  const int32_t vocab = in.ConsumeIntegralInRange<int32_t>(1, 40);
  int32_t h[kFields] = {heads * hs, in.ConsumeIntegralInRange<int32_t>(1, 48), in.ConsumeIntegralInRange<int32_t>(1, 2),
                        heads, kv, in.ConsumeBool() ? vocab : -vocab, in.ConsumeIntegralInRange<int32_t>(1, 24)};
  File f;
  LlamaConfig c;
  Llama2cHeader lh{h[0], h[1], h[2], h[3], h[4], h[5], h[6]};
  TILEKIT_FUZZ_CHECK(llama2c_config(lh, &c) == Status::kOk, "generated header refused");
  const size_t count = static_cast<size_t>(ExpectedFloats(h));
  std::vector<float> body(count);
  LlamaWeights w;
  llama2c_weights(c, body.data(), &w);
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());
  for (float& x : body) x = values.next();  // the legacy RoPE tables too (skipped by the reader)
  testing::FillLlamaWeights(c, w, [&](float lo, float hi) { return lo + (hi - lo) * (values.next() + 1.f) / 2; });
  f.bytes.resize(28 + count * sizeof(float));
  std::memcpy(f.bytes.data() + 28, body.data(), count * sizeof(float));
  PutHeader(&f, h);
  f.random_weights = true;
  int32_t made_for[kFields];
  std::memcpy(made_for, h, sizeof(h));
  switch (in.ConsumeIntegralInRange<int>(0, 6)) {
    case 0: break;  // as written
    case 1: f.bytes.resize(in.ConsumeIntegralInRange<size_t>(0, f.bytes.size() - 1)); break;  // truncated
    case 2: f.bytes.resize(f.bytes.size() + in.ConsumeIntegralInRange<size_t>(1, 8), 0x3f); break;  // trailing
    case 3: {  // a header field at an edge
      h[in.ConsumeIntegralInRange<int>(0, kFields - 1)] = fuzz::Pick(in, {0, -1, -2, INT32_MIN, INT32_MAX, 1 << 15,
                                                                          1 << 20, 3, 5, 6, 7});
      PutHeader(&f, h);
      break;
    }
    case 4: {  // a NaN or Inf weight (loaded as is: the format has no checksum)
      const float bad = fuzz::Pick(in, {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                                        -std::numeric_limits<float>::infinity()});
      std::memcpy(f.bytes.data() + 28 + 4 * in.ConsumeIntegralInRange<size_t>(0, count - 1), &bad, 4);
      f.random_weights = false;
      break;
    }
    case 5: {  // the fuzzer's bytes as the body
      const std::vector<unsigned char> rest = in.ConsumeBytes<unsigned char>(in.remaining_bytes() / 2);
      f.bytes.resize(28);
      f.bytes.insert(f.bytes.end(), rest.begin(), rest.end());
      f.random_weights = false;
      break;
    }
    case 6: {  // header fields from the fuzzer, the body as generated
      for (int32_t& x : h) x = in.ConsumeBool() ? in.ConsumeIntegral<int32_t>() : x;
      PutHeader(&f, h);
      break;
    }
  }
  // Weights made for another header are just floats to the reference.
  f.random_weights &= f.bytes.size() >= 28 && std::memcmp(made_for, f.bytes.data(), 28) == 0;
  return f;
}

// A few decode steps on one thread and on two, bitwise; against the fp64
// reference when the weights are the harness's.
void Decode(FuzzedDataProvider& in, const Llama2cCheckpoint& ck, bool random_weights) {
  const LlamaConfig& c = ck.config;
  const Isa path = fuzz::PickPath(in);
  fuzz::Force(path);
  LlamaOptions o;
  o.weights = in.ConsumeBool() ? WeightType::kBf16 : WeightType::kF32;
  o.block_tokens = fuzz::Pick<size_t>(in, {1, 4, 16});
  o.max_tokens = o.max_sequences = 2;  // one slot decodes on one thread, the other on two
  LlamaModel model;
  TILEKIT_FUZZ_CHECK(model.build(c, ck.weights, o) == Status::kOk, "a loaded checkpoint's model refused");
  static ThreadPool pool(2);
  KvSlot one, two;
  TILEKIT_FUZZ_CHECK(one.init(model.cache(), c.max_seq_len) == Status::kOk && two.init(model.cache(), c.max_seq_len) == Status::kOk,
                     "slots");
  const bool bf = o.weights == WeightType::kBf16;
  testing::LlamaReference ref(c, ck.weights, bf ? testing::kBf16Eps : 0.0,
                              bf && active_panel_layout(WeightType::kBf16).rounds_a_to_bf16() ? testing::kBf16Eps : 0.0);
  const size_t steps = std::min<size_t>(c.max_seq_len, in.ConsumeIntegralInRange<size_t>(1, 3));
  std::vector<float> logits(c.vocab);
  for (size_t s = 0; s < steps; ++s) {
    const int32_t token = static_cast<int32_t>(in.ConsumeIntegralInRange<size_t>(0, c.vocab - 1));
    TILEKIT_FUZZ_CHECK(model.forward(one, &token, 1) == Status::kOk, "decode step %zu", s);
    const MatrixView<const float> y = model.logits();
    TILEKIT_FUZZ_CHECK(y.rows == 1 && y.cols == c.vocab, "logits %zu x %zu", y.rows, y.cols);
    std::memcpy(logits.data(), y.data, c.vocab * sizeof(float));
    TILEKIT_FUZZ_CHECK(model.forward(two, &token, 1, &pool) == Status::kOk, "decode step %zu on two threads", s);
    TILEKIT_FUZZ_CHECK(std::memcmp(logits.data(), model.logits().data, c.vocab * sizeof(float)) == 0,
                       "step %zu: two threads gave other logits", s);
    if (!random_weights) continue;
    const testing::EV want = ref.step(token);
    for (size_t j = 0; j < c.vocab; ++j) {
      const double err = std::fabs(logits[j] - want.v[j]), bound = testing::kSigmas * want.e[j];
      TILEKIT_FUZZ_CHECK(err <= bound, "step %zu logit %zu: %.9g, reference %.9g, error %.3g > bound %.3g", s, j,
                         logits[j], want.v[j], err, bound);
    }
  }
}

void Run(FuzzedDataProvider& in) {
  File f;
  if (in.ConsumeBool()) {
    f = Generate(in);
  } else {
    f.bytes = in.ConsumeBytes<unsigned char>(in.ConsumeIntegralInRange<size_t>(0, 4096));
  }
  int32_t h[kFields] = {};
  if (f.bytes.size() >= 28) std::memcpy(h, f.bytes.data(), 28);
  const __int128 want = f.bytes.size() >= 28 ? ExpectedFloats(h) : -1;
  const bool valid = want >= 0 && 28 + 4 * want == static_cast<__int128>(f.bytes.size());

  // A refused load leaves the checkpoint as it was: this one.
  Llama2cCheckpoint mem;
  mem.config.dim = 12345;
  detail::last_error_buffer()[0] = '\0';  // so a refusal must write its own message
  const Status sm = load_llama2c_memory(f.bytes.data(), f.bytes.size(), &mem);
  TILEKIT_FUZZ_CHECK((sm == Status::kOk) == valid, "memory: %s for a %s checkpoint of %zu bytes", status_name(sm),
                     valid ? "valid" : "bad", f.bytes.size());
  if (sm != Status::kOk) {
    TILEKIT_FUZZ_CHECK(last_error()[0] != '\0', "refused (%s) without a message", status_name(sm));
    TILEKIT_FUZZ_CHECK(mem.config.dim == 12345 && mem.data.empty(), "a refused load changed the checkpoint");
  }
  // The same bytes as a stream, after a prefix it must not read.
  std::vector<unsigned char> prefixed(5, 0xee);
  prefixed.insert(prefixed.end(), f.bytes.begin(), f.bytes.end());
  std::FILE* stream = fmemopen(prefixed.data(), prefixed.size(), "rb");
  TILEKIT_FUZZ_CHECK(stream && std::fseek(stream, 5, SEEK_SET) == 0, "fmemopen");
  Llama2cCheckpoint str;
  const Status ss = load_llama2c_stream(stream, "fuzz", &str);
  std::fclose(stream);
  TILEKIT_FUZZ_CHECK(ss == sm, "stream %s, memory %s", status_name(ss), status_name(sm));
  if (sm != Status::kOk) return;

  const size_t count = static_cast<size_t>(want);
  const LlamaConfig& c = mem.config;
  const size_t V = static_cast<size_t>(h[kVocab] < 0 ? -static_cast<int64_t>(h[kVocab]) : h[kVocab]);
  TILEKIT_FUZZ_CHECK(c.dim == size_t(h[kDim]) && c.hidden == size_t(h[kHidden]) && c.layers == size_t(h[kLayers]) &&
                         c.heads == size_t(h[kHeads]) && c.kv_heads == size_t(h[kKvHeads]) && c.vocab == V &&
                         c.max_seq_len == size_t(h[kSeqLen]) && c.tied_embeddings == (h[kVocab] > 0) &&
                         c.norm_eps == 1e-5f && c.rope.theta == 10000.0 && c.rope.pairing == RopePairing::kInterleaved,
                     "config is not the header's");
  TILEKIT_FUZZ_CHECK(mem.data.size() == count && str.data.size() == count &&
                         (count == 0 || (std::memcmp(mem.data.data(), f.bytes.data() + 28, 4 * count) == 0 &&
                                         std::memcmp(str.data.data(), f.bytes.data() + 28, 4 * count) == 0)),
                     "the loaded floats are not the body");
  // Where llama2.c's run.c finds each array.
  const float* p = mem.data.data();
  const size_t D = c.dim, hs = c.head_dim(), kvd = c.kv_heads * hs, L = c.layers, H = c.hidden;
  const LlamaWeights& w = mem.weights;
  TILEKIT_FUZZ_CHECK(w.embedding == p && w.layers.size() == L, "embedding, layers");
  TILEKIT_FUZZ_CHECK(w.layers[0].wq == p + V * D + L * D && w.layers[L - 1].w3 == w.final_norm - D * H &&
                         w.layers[0].wo == p + V * D + L * D + L * D * D + 2 * L * kvd * D,
                     "layer arrays misplaced");
  TILEKIT_FUZZ_CHECK(w.final_norm == p + count - D - c.max_seq_len * hs - (c.tied_embeddings ? 0 : V * D),
                     "final norm misplaced");
  TILEKIT_FUZZ_CHECK(w.classifier == (c.tied_embeddings ? p : p + count - V * D), "classifier misplaced");
  Decode(in, mem, f.random_weights);
}

void Write(const char* name, const std::vector<unsigned char>& bytes) {
  std::FILE* f = std::fopen(name, "wb");
  TILEKIT_FUZZ_CHECK(f && std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size() && std::fclose(f) == 0,
                     "cannot write %s", name);
}

// The committed seeds (TILEKIT_LLAMA2C_SEEDS=dir build/asan/tests/fuzz/llama2c_fuzz
// -runs=0 writes them): a tiny valid checkpoint with an unshared classifier,
// cut after the header, inside the body and one float short, and one byte
// long, each as a raw-mode input: the file, 16 bytes for Decode's choices, the
// file's length (low byte, high byte: read from the end, high first) and 0 (raw mode);
// and three patterns that take the generating branch.
void WriteSeeds(const char* dir) {
  const int32_t h[kFields] = {4, 6, 1, 2, 1, -5, 4};
  LlamaConfig c;
  TILEKIT_FUZZ_CHECK(llama2c_config(Llama2cHeader{h[0], h[1], h[2], h[3], h[4], h[5], h[6]}, &c) == Status::kOk, "seed");
  std::vector<float> body(static_cast<size_t>(ExpectedFloats(h)));
  LlamaWeights w;
  llama2c_weights(c, body.data(), &w);
  fuzz::Values values(1);
  for (float& x : body) x = values.next();
  testing::FillLlamaWeights(c, w, [&](float lo, float hi) { return lo + (hi - lo) * (values.next() + 1.f) / 2; });
  std::vector<unsigned char> file(28 + 4 * body.size());
  std::memcpy(file.data(), h, 28);
  std::memcpy(file.data() + 28, body.data(), 4 * body.size());
  const size_t sizes[] = {file.size(), 28, 28 + 4 * body.size() / 2, file.size() - 4, file.size() + 1};
  for (size_t size : sizes) {
    std::vector<unsigned char> seed(file.begin(), file.begin() + std::min(size, file.size()));
    seed.resize(size + 16, 0);
    seed.push_back(static_cast<unsigned char>(size));
    seed.push_back(static_cast<unsigned char>(size >> 8));
    seed.push_back(0);
    char name[512];
    std::snprintf(name, sizeof(name), "%s/tiny-%zu", dir, size);
    Write(name, seed);
  }
  // And a few inputs for the harness's own checkpoints (last byte odd).
  for (unsigned step = 1; step <= 3; ++step) {
    std::vector<unsigned char> seed(64);
    for (size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<unsigned char>(i * (37 + 20 * step) + 11);
    seed.back() = 1;
    char name[512];
    std::snprintf(name, sizeof(name), "%s/generated-%u", dir, step);
    Write(name, seed);
  }
}

}  // namespace
}  // namespace tilekit

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("TILEKIT_LLAMA2C_SEEDS")) tilekit::WriteSeeds(dir);
  return 0;
}

TILEKIT_FUZZ_ENTRY(tilekit::Run)
