// GGUF files (parse_gguf, load_gguf_memory) from arbitrary bytes: either the
// bytes are the file, or the harness writes a small random Llama model
// (tests/fuzz/model_files.h: F32, F16, BF16, Q8_0 or Q4_0 tensors, tied or
// not) and applies one corruption: truncation at any point, overwritten
// bytes, or a header u64 (a count, a length, a dimension, an offset) set to
// an edge.
//
// Checks: the valid file loads, with its config, and its model builds and
// decodes to finite logits (Q8_0 / Q4_0 packed from their blocks when the
// input picks the matching weight type); every truncation is refused with a
// message; whatever loads has its tensors inside the input and its weights
// inside the input or its own buffers, and runs two tokens without a
// sanitizer report. The input is copied to a buffer of exactly its size, so
// a read past the end is an ASan report. Positions are capped
// (LoadOptions::max_seq_len) as an engine would: a header may claim any
// context length.
#include <memory>

#include "fuzz.h"
#include "model_files.h"
#include "tilekit/loaders/gguf.h"

namespace tilekit {
namespace {

void Check(const unsigned char* p, size_t size, const LoadOptions& o, int corruption, const LlamaConfig* written) {
  LoadedModel m;
  const Status st = load_gguf_memory(p, size, o, &m);
  if (corruption == 0) TILEKIT_FUZZ_CHECK(st == Status::kOk, "the valid file was refused");
  if (corruption == 1) TILEKIT_FUZZ_CHECK(st != Status::kOk, "a truncated file (%zu bytes) was accepted", size);
  if (st != Status::kOk) {
    TILEKIT_FUZZ_CHECK(last_error()[0] != '\0', "a refusal without a message");
    return;
  }
  GgufFile f;
  TILEKIT_FUZZ_CHECK(parse_gguf(p, size, &f) == Status::kOk, "loaded but does not parse");
  for (const GgufTensorInfo& t : f.tensors) {
    TILEKIT_FUZZ_CHECK(t.data >= p && t.bytes <= size && t.data - p <= static_cast<ptrdiff_t>(size - t.bytes), "tensor %s outside", t.name.c_str());
  }
  TILEKIT_FUZZ_CHECK(fuzz::Inside(m.weights.embedding, p, size, m) && fuzz::Inside(m.weights.final_norm, p, size, m), "weights outside");
  if (written) {
    TILEKIT_FUZZ_CHECK(m.config.dim == written->dim && m.config.layers == written->layers && m.config.vocab == written->vocab &&
                           m.config.tied_embeddings == written->tied_embeddings && m.config.rope.pairing == RopePairing::kInterleaved,
                       "config");
  }
  fuzz::RunLoaded(m, o, corruption == 0);
}

void Run(FuzzedDataProvider& in) {
  LoadOptions o;
  o.max_seq_len = 16;
  o.weights = fuzz::Pick(in, {WeightType::kF32, WeightType::kBf16, WeightType::kInt8, WeightType::kInt4});
  if (in.ConsumeBool()) {
    const std::vector<unsigned char> bytes = in.ConsumeRemainingBytes<unsigned char>();
    std::unique_ptr<unsigned char[]> exact(new unsigned char[bytes.size() + 1]);
    std::copy(bytes.begin(), bytes.end(), exact.get());
    Check(exact.get(), bytes.size(), o, -1, nullptr);
    return;
  }
  const LlamaConfig c = fuzz::SmallConfig(in);
  const int type = in.ConsumeIntegralInRange<int>(0, 4);
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());
  std::vector<unsigned char> file = fuzz::GgufModel(c, type, values);
  GgufFile parsed;
  TILEKIT_FUZZ_CHECK(parse_gguf(file.data(), file.size(), &parsed) == Status::kOk, "the writer's file does not parse");
  const int corruption = fuzz::Corrupt(in, &file, parsed.data_offset);
  std::unique_ptr<unsigned char[]> exact(new unsigned char[file.size() + 1]);
  std::copy(file.begin(), file.end(), exact.get());
  Check(exact.get(), file.size(), o, corruption, corruption == 0 ? &c : nullptr);
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)
