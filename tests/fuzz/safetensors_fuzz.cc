// safetensors checkpoints (parse_safetensors, parse_json, load_safetensors_memory)
// from arbitrary bytes: either the bytes are a file (or, half the time, a
// config.json text), or the harness writes a small random Llama model
// (tests/fuzz/model_files.h: F32, F16 or BF16 tensors, tied or not) with its
// config.json, and applies one corruption to the file: truncation at any
// point, overwritten bytes (the JSON header's included), or a u64 of the
// header region set to an edge.
//
// Checks: the valid checkpoint loads with its config (half-split RoPE), and
// its model builds and decodes to finite logits; every truncation is refused
// with a message; whatever loads has every tensor inside the input and runs
// two tokens without a sanitizer report. Inputs are copied to buffers of
// exactly their size, so a read past the end is an ASan report.
#include <memory>

#include "fuzz.h"
#include "model_files.h"
#include "tilekit/loaders/json.h"
#include "tilekit/loaders/safetensors.h"

namespace tilekit {
namespace {

void Check(const unsigned char* p, size_t size, const std::string& config, int corruption, const LlamaConfig* written) {
  LoadOptions o;
  o.max_seq_len = 16;
  const MemoryFile file{p, size};
  LoadedModel m;
  const Status st = load_safetensors_memory(config.data(), config.size(), &file, 1, o, &m);
  if (corruption == 0) TILEKIT_FUZZ_CHECK(st == Status::kOk, "the valid checkpoint was refused");
  if (corruption == 1) TILEKIT_FUZZ_CHECK(st != Status::kOk, "a truncated file (%zu bytes) was accepted", size);
  if (st != Status::kOk) {
    TILEKIT_FUZZ_CHECK(last_error()[0] != '\0', "a refusal without a message");
    return;
  }
  SafetensorsFile f;
  TILEKIT_FUZZ_CHECK(parse_safetensors(p, size, &f) == Status::kOk, "loaded but does not parse");
  for (const SafetensorsTensor& t : f.tensors) {
    TILEKIT_FUZZ_CHECK(t.data >= p && t.bytes <= size && t.data - p <= static_cast<ptrdiff_t>(size - t.bytes), "tensor %s outside", t.name.c_str());
  }
  if (written) {
    TILEKIT_FUZZ_CHECK(m.config.dim == written->dim && m.config.layers == written->layers && m.config.vocab == written->vocab &&
                           m.config.tied_embeddings == written->tied_embeddings && m.config.rope.pairing == RopePairing::kHalfSplit,
                       "config");
  }
  fuzz::RunLoaded(m, o, corruption == 0);
}

void Run(FuzzedDataProvider& in) {
  const int mode = in.ConsumeIntegralInRange<int>(0, 2);
  if (mode < 2) {
    const std::vector<unsigned char> bytes = in.ConsumeRemainingBytes<unsigned char>();
    std::unique_ptr<unsigned char[]> exact(new unsigned char[bytes.size() + 1]);
    std::copy(bytes.begin(), bytes.end(), exact.get());
    if (mode == 0) {
      JsonValue v;
      const Status st = parse_json(reinterpret_cast<const char*>(exact.get()), bytes.size(), &v);
      TILEKIT_FUZZ_CHECK(st == Status::kOk || last_error()[0] != '\0', "a JSON refusal without a message");
      // As a config.json, beside a file with no tensors.
      const unsigned char empty[16] = {8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '};
      Check(empty, sizeof(empty), std::string(reinterpret_cast<const char*>(exact.get()), bytes.size()), -1, nullptr);
      return;
    }
    LlamaConfig c;
    c.dim = 32, c.hidden = 32, c.layers = 1, c.heads = 2, c.kv_heads = 1, c.vocab = 8, c.max_seq_len = 16;
    Check(exact.get(), bytes.size(), fuzz::HfConfigJson(c), -1, nullptr);
    return;
  }
  const LlamaConfig c = fuzz::SmallConfig(in);
  const int type = in.ConsumeIntegralInRange<int>(0, 2);
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());
  std::vector<unsigned char> file = fuzz::SafetensorsModel(c, type, values);
  SafetensorsFile parsed;
  TILEKIT_FUZZ_CHECK(parse_safetensors(file.data(), file.size(), &parsed) == Status::kOk, "the writer's file does not parse");
  const int corruption = fuzz::Corrupt(in, &file, parsed.data_offset);
  std::unique_ptr<unsigned char[]> exact(new unsigned char[file.size() + 1]);
  std::copy(file.begin(), file.end(), exact.get());
  Check(exact.get(), file.size(), fuzz::HfConfigJson(c), corruption, corruption == 0 ? &c : nullptr);
}

}  // namespace
}  // namespace tilekit

TILEKIT_FUZZ_ENTRY(tilekit::Run)
