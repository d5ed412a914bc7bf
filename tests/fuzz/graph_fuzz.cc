// Graph from arbitrary bytes: up to eight nodes through the public builder
// (input, embedding, linear with bias and activation, gate_up_swiglu,
// rms_norm, add_rms_norm, add, last_tokens, mark_output), fp32 or bf16
// weights per node, [K][N] or [N][K] sources, then steps of one to three
// sequences. Each node may be corrupted: an unknown or absent tensor, columns
// or rows that do not match, null weights or table, no columns, SwiGLU on a
// plain linear, a weight ld < cols, a negative or NaN eps, a size whose bytes
// overflow size_t (HugeDim); and a run may get a bad step (no sequences, too
// many tokens, a sequence without tokens, a token outside the vocabulary, no
// token ids).
//
// Checks: build refuses exactly the graphs with a bad node, with a message;
// a bad step is refused and leaves every output as it was; a valid graph runs
// and each output is within the bound of an fp64 evaluation of the same node
// list (values with a worst-case first-order error bound, each GEMM's from
// tests/gemm_reference.h: fusion and folding the executor does change no
// bound), bitwise equal on one thread and two.
#include "../gemm_reference.h"
#include "fuzz.h"
#include "tilekit/graph/graph.h"

namespace tilekit {
namespace {

constexpr double kU = testing::kF32Eps;

enum class Kind { kInput, kEmbedding, kLinear, kGateUp, kRmsNorm, kAddRmsNorm, kAdd, kLastTokens, kCount };

// A tensor as the harness knows it.
struct Tensor {
  TensorId id = kNoTensor;
  size_t cols = 0;
  bool per_sequence = false;
  bool output = false;
};

// A node as the reference evaluates it.
struct Node {
  Kind kind = Kind::kInput;
  size_t a = 0, b = 0, out = 0, out2 = 0;  // harness tensor indices
  std::vector<float> w, w2;                // [K][N] as the reference reads them (bf16-rounded when packed so)
  std::vector<float> bias, norm;
  Activation activation = Activation::kNone;
  bool bf16 = false;
  float eps = 0.f;
  size_t vocab = 0;
  std::vector<float> table;
};

// Values with a worst-case bound on their error, [rows][cols].
struct EV {
  size_t rows = 0, cols = 0;
  std::vector<double> v, e;
  void resize(size_t r, size_t c) {
    rows = r, cols = c;
    v.assign(r * c, 0.0);
    e.assign(r * c, 0.0);
  }
};

struct Case {
  std::vector<Tensor> tensors;
  std::vector<Node> nodes;
  bool bad = false;  // a node the builder must refuse
  int bad_kind = -1, bad_corruption = -1;  // the first one, for the message
  std::vector<std::vector<float>> sources;  // keeps the weights the graph reads until it is built
};

// Weights for a linear: K x N through a [K][N] or [N][K] source with padding;
// `reference` gets them [K][N], rounded as the packing will.
WeightSource MakeWeights(FuzzedDataProvider& in, fuzz::Values& values, Case& c, size_t k, size_t n, bool bf16,
                         bool ld_too_small, std::vector<float>* reference) {
  const bool nk = in.ConsumeBool();
  const size_t rows = nk ? n : k, cols = nk ? k : n;
  const size_t ld = ld_too_small && cols ? cols - 1 : cols + in.ConsumeIntegralInRange<size_t>(0, 2);
  c.sources.emplace_back(rows * ld + 1);
  std::vector<float>& s = c.sources.back();
  values.fill(s);
  reference->resize(k * n);
  for (size_t kk = 0; kk < k && !ld_too_small; ++kk) {
    for (size_t j = 0; j < n; ++j) {
      const float w = nk ? s[j * ld + kk] : s[kk * ld + j];
      (*reference)[kk * n + j] = bf16 ? bf16_to_f32(f32_to_bf16(w)) : w;
    }
  }
  return WeightSource{s.data(), k, n, ld, nk ? SourceLayout::kNK : SourceLayout::kKN};
}

// Builds the graph node by node from the bytes; c.bad when the harness made a
// node the builder must refuse (the nodes after it are still described).
void Describe(FuzzedDataProvider& in, fuzz::Values& values, Graph& g, Case& c, WeightType graph_weights) {
  const size_t count = in.ConsumeIntegralInRange<size_t>(1, 8);
  TensorId next_id = 0;  // ids are handed out in order; one past the last is unknown
  auto pick = [&](bool* bad) -> size_t {
    if (c.tensors.empty() || in.ConsumeIntegralInRange<int>(0, 31) == 0) {
      *bad = true;
      return SIZE_MAX;  // an unknown tensor
    }
    return in.ConsumeIntegralInRange<size_t>(0, c.tensors.size() - 1);
  };
  auto id_of = [&](size_t t) -> TensorId {
    if (t != SIZE_MAX) return c.tensors[t].id;
    return fuzz::Pick<TensorId>(in, {kNoTensor, next_id, next_id + 1, 1u << 20});
  };
  auto add_tensor = [&](TensorId id, size_t cols, bool per_sequence) {
    c.tensors.push_back(Tensor{id, cols, per_sequence, false});
    next_id = std::max<TensorId>(next_id, id + 1);
    return c.tensors.size() - 1;
  };
  for (size_t i = 0; i < count && in.remaining_bytes() > 0; ++i) {
    Node n;
    n.kind = static_cast<Kind>(in.ConsumeIntegralInRange<int>(0, static_cast<int>(Kind::kCount) - 1));
    const int corrupt = in.ConsumeIntegralInRange<int>(0, 15);  // 0-3: one corruption of this node
    bool bad = false;
    bool late = false;  // bad in a way only build() can tell (a size times max_tokens, packing)
    TensorId got = kNoTensor;
    switch (n.kind) {
      case Kind::kInput: {
        size_t cols = 1 + fuzz::Dim(in, 23);
        if (corrupt == 0) cols = 0, bad = true;
        if (corrupt == 1) cols = fuzz::HugeDim(in), bad = late = true;
        got = g.input(cols);
        if (!bad) n.out = add_tensor(got, cols, false);
        break;
      }
      case Kind::kEmbedding: {
        n.vocab = in.ConsumeIntegralInRange<size_t>(1, 9);
        size_t dim = 1 + fuzz::Dim(in, 23);
        n.table.resize(n.vocab * dim);
        values.fill(n.table);
        const float* table = n.table.data();
        if (corrupt == 0) table = nullptr, bad = true;
        if (corrupt == 1) dim = fuzz::HugeDim(in), bad = late = true;  // the table is the caller's promise; the arena cannot be
        if (corrupt == 2) n.vocab = 0, bad = true;
        got = g.embedding(table, n.vocab, dim);
        if (!bad) n.out = add_tensor(got, dim, false);
        break;
      }
      case Kind::kLinear:
      case Kind::kGateUp: {
        n.a = pick(&bad);
        const size_t k = bad ? 1 + fuzz::Dim(in, 23) : c.tensors[n.a].cols;
        size_t wk = k, wn = 1 + fuzz::Dim(in, 23);
        const NodeWeights nw = fuzz::Pick(in, {NodeWeights::kGraphDefault, NodeWeights::kF32, NodeWeights::kBf16});
        n.bf16 = nw == NodeWeights::kBf16 || (nw == NodeWeights::kGraphDefault && graph_weights == WeightType::kBf16);
        if (corrupt == 0) wk = k + 1, bad = true;
        if (corrupt == 1) wn = fuzz::HugeDim(in), bad = late = true;
        const bool ld_too_small = corrupt == 2 && wn > 1 && k > 1;
        bad |= ld_too_small;
        late |= ld_too_small;
        const bool huge = wn > 1000;
        WeightSource w = huge ? WeightSource{c.sources.emplace_back(1).data(), wk, wn, wn, SourceLayout::kKN}
                              : MakeWeights(in, values, c, wk, wn, n.bf16, ld_too_small, &n.w);
        if (corrupt == 3) w.data = nullptr, bad = true;
        if (n.kind == Kind::kGateUp) {
          WeightSource up = huge ? w : MakeWeights(in, values, c, wk, wn, n.bf16, ld_too_small, &n.w2);
          if (corrupt == 3) up.data = nullptr;
          got = g.gate_up_swiglu(id_of(n.a), w, up, nw);
        } else {
          LinearOptions o;
          o.weights = nw;
          n.activation = fuzz::Pick(in, {Activation::kNone, Activation::kRelu, Activation::kGeluErf,
                                         Activation::kGeluTanh, Activation::kSilu, Activation::kSwiGlu});
          bad |= n.activation == Activation::kSwiGlu;
          o.activation = n.activation;
          if (in.ConsumeBool() && !huge) {
            n.bias.resize(wn);
            values.fill(n.bias);
            o.bias = n.bias.data();
          }
          got = g.linear(id_of(n.a), w, o);
        }
        if (!bad) n.out = add_tensor(got, wn, c.tensors[n.a].per_sequence);
        break;
      }
      case Kind::kRmsNorm:
      case Kind::kAddRmsNorm: {
        n.a = pick(&bad);
        const size_t cols = bad ? 4 : c.tensors[n.a].cols;
        n.norm.resize(cols);
        for (float& x : n.norm) x = 0.5f + (values.next() + 1.f) / 2;  // near 1, as trained norms are
        n.eps = fuzz::Pick(in, {1e-5f, 1e-6f, 1e-3f});
        if (corrupt == 0) n.eps = fuzz::Pick(in, {-1e-5f, std::numeric_limits<float>::quiet_NaN()}), bad = true;
        const float* weight = corrupt == 1 ? nullptr : n.norm.data();
        bad |= corrupt == 1;
        if (n.kind == Kind::kRmsNorm) {
          got = g.rms_norm(id_of(n.a), weight, n.eps);
          if (!bad) n.out = add_tensor(got, cols, c.tensors[n.a].per_sequence);
          break;
        }
        n.b = pick(&bad);
        bad |= !bad && (c.tensors[n.a].cols != c.tensors[n.b].cols ||
                        c.tensors[n.a].per_sequence != c.tensors[n.b].per_sequence);
        TensorId residual = id_of(n.b);
        got = g.add_rms_norm(id_of(n.a), &residual, weight, n.eps);
        if (!bad) {
          n.out2 = add_tensor(residual, cols, c.tensors[n.a].per_sequence);  // the sum
          n.out = add_tensor(got, cols, c.tensors[n.a].per_sequence);
        }
        break;
      }
      case Kind::kAdd: {
        n.a = pick(&bad);
        n.b = pick(&bad);
        bad |= !bad && (c.tensors[n.a].cols != c.tensors[n.b].cols ||
                        c.tensors[n.a].per_sequence != c.tensors[n.b].per_sequence);
        got = g.add(id_of(n.a), id_of(n.b));
        if (!bad) n.out = add_tensor(got, c.tensors[n.a].cols, c.tensors[n.a].per_sequence);
        break;
      }
      case Kind::kLastTokens: {
        n.a = pick(&bad);
        // Only a per-token tensor has a last token per sequence.
        bad |= !bad && c.tensors[n.a].per_sequence;
        got = g.last_tokens(id_of(n.a));
        if (!bad) n.out = add_tensor(got, c.tensors[n.a].cols, true);
        break;
      }
      case Kind::kCount: break;
    }
    if (got != kNoTensor) next_id = std::max<TensorId>(next_id, got + 1);  // a late-bad node's tensor exists too
    if (bad) {
      TILEKIT_FUZZ_CHECK(late || got == kNoTensor, "node %zu (kind %d, corruption %d): a bad node returned tensor %u", i,
                         static_cast<int>(n.kind), corrupt, got);
      if (!c.bad) c.bad_kind = static_cast<int>(n.kind), c.bad_corruption = corrupt;
      c.bad = true;
      continue;
    }
    TILEKIT_FUZZ_CHECK(got != kNoTensor, "node %zu (kind %d) refused: %s", i, static_cast<int>(n.kind), last_error());
    c.nodes.push_back(std::move(n));
  }
  // Outputs: some tensors, at least one (else nothing can be checked).
  for (Tensor& t : c.tensors) t.output = in.ConsumeBool();
  if (!c.tensors.empty()) c.tensors.back().output = true;
  for (const Tensor& t : c.tensors) {
    if (t.output) g.mark_output(t.id);
  }
  if (in.ConsumeIntegralInRange<int>(0, 31) == 0) {
    g.mark_output(id_of(SIZE_MAX));
    c.bad = true;
  }
}

// The fp64 evaluation of the node list for one step of `tokens` rows;
// seq_end: where each sequence's tokens end.
std::vector<EV> Evaluate(const Case& c, size_t tokens, const std::vector<size_t>& seq_end, const int32_t* ids,
                         const std::vector<std::vector<float>>& inputs, bool a_rounded, bool odd_sums) {
  std::vector<EV> t(c.tensors.size());
  for (const Node& n : c.nodes) {
    EV& y = t[n.out];
    switch (n.kind) {
      case Kind::kInput: {
        y.resize(tokens, c.tensors[n.out].cols);
        for (size_t i = 0; i < y.v.size(); ++i) y.v[i] = inputs[n.out][i];
        break;
      }
      case Kind::kEmbedding: {
        y.resize(tokens, c.tensors[n.out].cols);
        for (size_t r = 0; r < tokens; ++r) {
          for (size_t j = 0; j < y.cols; ++j) y.v[r * y.cols + j] = n.table[ids[r] * y.cols + j];
        }
        break;
      }
      case Kind::kLinear:
      case Kind::kGateUp: {
        const EV& x = t[n.a];
        const size_t k = x.cols, wn = c.tensors[n.out].cols;
        y.resize(x.rows, wn);
        // As gemm_reference: fp32 sums of K products within gamma_(K+2)·Σ|a||w|
        // (A rounded to bf16 by the path adds 2^-8 of it); an input error
        // passes on as Σ|w|·e.
        const double a_eps = n.bf16 && a_rounded ? testing::kBf16Eps : 0.0, u_sum = n.bf16 && odd_sums ? 2 * kU : kU;
        const double dot_err = a_eps + (k + 2) * u_sum / (1 - (k + 2) * u_sum) * (1 + a_eps);
        for (size_t r = 0; r < x.rows; ++r) {
          for (size_t j = 0; j < wn; ++j) {
            double acc[2] = {0, 0}, err[2] = {0, 0};
            for (int part = 0; part < (n.kind == Kind::kGateUp ? 2 : 1); ++part) {
              const std::vector<float>& w = part ? n.w2 : n.w;
              double mag = 0, prop = 0;
              for (size_t kk = 0; kk < k; ++kk) {
                const double a = x.v[r * k + kk], wv = w[kk * wn + j];
                acc[part] += a * wv;
                mag += std::fabs(a * wv);
                prop += x.e[r * k + kk] * std::fabs(wv);
              }
              err[part] = dot_err * mag + (1 + a_eps) * prop;
            }
            double v, e;
            if (n.kind == Kind::kGateUp) {
              const double sg = testing::ActivateRef(Activation::kSilu, acc[0]);
              v = sg * acc[1];
              e = 1.13 * err[0] * (std::fabs(acc[1]) + err[1]) + std::fabs(sg) * err[1] +
                  testing::kActivationRelError * std::fabs(acc[0] * acc[1]) + 2 * kU * std::fabs(v) + kU * std::fabs(v);
            } else {
              Epilogue ep;
              ep.activation = n.activation;
              ep.bias = n.bias.empty() ? nullptr : n.bias.data();
              testing::EpilogueRef(ep, acc[0], err[0], 0.0, n.bias.empty() ? 0.0 : n.bias[j], 0.0, false, &v, &e);
            }
            y.v[r * wn + j] = v;
            y.e[r * wn + j] = e;
          }
        }
        break;
      }
      case Kind::kAdd:
      case Kind::kAddRmsNorm: {
        EV& sum = n.kind == Kind::kAdd ? y : t[n.out2];
        const EV x = t[n.a], r = t[n.b];  // copies: the sum may be either
        sum.resize(x.rows, x.cols);
        for (size_t i = 0; i < x.v.size(); ++i) {
          sum.v[i] = x.v[i] + r.v[i];
          sum.e[i] = x.e[i] + r.e[i] + kU * std::fabs(sum.v[i]);
        }
        if (n.kind == Kind::kAdd) break;
      }
        [[fallthrough]];
      case Kind::kRmsNorm: {
        // r = 1/sqrt(Σx²/D + eps): the sum within gamma_D, four more roundings;
        // an input error moves it by Σ|x|·e / (Σx² + D·eps) relative.
        const EV& x = n.kind == Kind::kRmsNorm ? t[n.a] : t[n.out2];
        const size_t d = x.cols;
        y.resize(x.rows, d);
        for (size_t row = 0; row < x.rows; ++row) {
          double ss = 0, se = 0;
          for (size_t j = 0; j < d; ++j) {
            ss += x.v[row * d + j] * x.v[row * d + j];
            se += std::fabs(x.v[row * d + j]) * x.e[row * d + j];
          }
          const double rs = 1 / std::sqrt(ss / d + n.eps);
          const double r_rel = d * kU / (1 - d * kU) + 4 * kU + se / (ss + d * static_cast<double>(n.eps));
          for (size_t j = 0; j < d; ++j) {
            const double v = x.v[row * d + j], e = x.e[row * d + j], want = v * rs * n.norm[j];
            y.v[row * d + j] = want;
            y.e[row * d + j] = std::fabs(n.norm[j]) * rs * (e + std::fabs(v) * r_rel) + 2 * kU * std::fabs(want);
          }
        }
        break;
      }
      case Kind::kLastTokens: {
        const EV& x = t[n.a];
        y.resize(seq_end.size(), x.cols);
        for (size_t s = 0; s < seq_end.size(); ++s) {
          for (size_t j = 0; j < x.cols; ++j) {
            y.v[s * x.cols + j] = x.v[(seq_end[s] - 1) * x.cols + j];
            y.e[s * x.cols + j] = x.e[(seq_end[s] - 1) * x.cols + j];
          }
        }
        break;
      }
      case Kind::kCount: break;
    }
  }
  return t;
}

void Run(FuzzedDataProvider& in) {
  const Isa path = fuzz::PickPath(in);
  fuzz::Force(path);
  fuzz::Values values(in.ConsumeIntegral<uint64_t>());
  GraphConfig gc;
  gc.max_tokens = in.ConsumeIntegralInRange<size_t>(1, 6);
  gc.max_sequences = in.ConsumeIntegralInRange<size_t>(1, std::min<size_t>(gc.max_tokens, 3));
  gc.weights = in.ConsumeBool() ? WeightType::kBf16 : WeightType::kF32;
  static ThreadPool pool(2);
  gc.pack_executor = in.ConsumeBool() ? &pool : nullptr;
  Graph g;
  Case c;
  Describe(in, values, g, c, gc.weights);
  detail::last_error_buffer()[0] = '\0';  // so a refusal must write its own message
  const Status built = g.build(gc);
  if (c.bad) {
    TILEKIT_FUZZ_CHECK(built != Status::kOk, "a graph with a bad node (kind %d, corruption %d) was built", c.bad_kind,
                       c.bad_corruption);
    TILEKIT_FUZZ_CHECK(last_error()[0] != '\0', "refused (%s) without a message", status_name(built));
    TILEKIT_FUZZ_CHECK(!g.built() && g.run(Step{}) != Status::kOk, "a refused graph runs");
    return;
  }
  TILEKIT_FUZZ_CHECK(built == Status::kOk, "a valid graph refused: %s", status_name(built));
  TILEKIT_FUZZ_CHECK(g.build(gc) != Status::kOk, "built twice");
  TILEKIT_FUZZ_CHECK(g.input(3) == kNoTensor, "a node added after build");

  const PanelLayout layout = active_panel_layout(WeightType::kBf16);
  const bool a_rounded = layout.rounds_a_to_bf16(), odd_sums = layout.kind == PanelKind::kArmBfmmla;
  size_t vocab = SIZE_MAX;  // the smallest table bounds the ids
  for (const Node& n : c.nodes) {
    if (n.kind == Kind::kEmbedding) vocab = std::min(vocab, n.vocab);
  }
  for (int step = 0; step < 3 && in.remaining_bytes() > 0; ++step) {
    // A step: sequences and their tokens (ids within every table).
    std::vector<SequenceStep> seqs(in.ConsumeIntegralInRange<size_t>(1, gc.max_sequences));
    size_t tokens = 0;
    std::vector<size_t> seq_end;
    for (SequenceStep& s : seqs) {
      s.tokens = in.ConsumeIntegralInRange<size_t>(1, std::max<size_t>(1, gc.max_tokens - tokens - (seqs.size() - 1 - seq_end.size())));
      s.pos = in.ConsumeIntegralInRange<size_t>(0, 100);
      tokens += s.tokens;
      seq_end.push_back(tokens);
    }
    std::vector<int32_t> ids(tokens);
    for (int32_t& id : ids) id = static_cast<int32_t>(in.ConsumeIntegralInRange<size_t>(0, std::min<size_t>(vocab, 64) - 1));
    std::vector<std::vector<float>> inputs(c.tensors.size());
    for (const Node& n : c.nodes) {
      if (n.kind != Kind::kInput) continue;
      inputs[n.out].resize(tokens * c.tensors[n.out].cols);
      values.fill(inputs[n.out]);
    }
    Step st{ids.data(), seqs.data(), seqs.size()};
    // One bad step first: refused, every output as it was.
    const int corrupt = in.ConsumeIntegralInRange<int>(0, 7);
    if (corrupt < 5) {
      std::vector<fuzz::Snapshot> before;
      for (const Tensor& t : c.tensors) {
        if (t.output && g.output(t.id).data) before.emplace_back(g.output(t.id).data, g.output(t.id).rows * t.cols * 4);
      }
      Step bad = st;
      std::vector<SequenceStep> more = seqs;
      std::vector<int32_t> bad_ids = ids;
      switch (corrupt) {
        case 0: bad.num_seqs = 0; break;
        case 1: more.back().tokens += gc.max_tokens; bad.seqs = more.data(); break;
        case 2: more.back().tokens = 0; bad.seqs = more.data(); break;
        case 3:
          if (vocab == SIZE_MAX) {
            bad.seqs = nullptr;
          } else {
            bad_ids[in.ConsumeIntegralInRange<size_t>(0, tokens - 1)] = fuzz::Pick<int32_t>(in, {-1, INT32_MIN, static_cast<int32_t>(vocab)});
            bad.token_ids = bad_ids.data();
          }
          break;
        case 4:
          if (vocab == SIZE_MAX) bad.num_seqs = gc.max_sequences + 1;
          else bad.token_ids = nullptr;
          break;
      }
      if (bad.num_seqs > seqs.size()) {
        more.resize(bad.num_seqs, SequenceStep{nullptr, 0, 0, 1});
        bad.seqs = more.data();
      }
      detail::last_error_buffer()[0] = '\0';
      const Status s = g.run(bad);
      TILEKIT_FUZZ_CHECK(s != Status::kOk, "bad step %d accepted", corrupt);
      TILEKIT_FUZZ_CHECK(last_error()[0] != '\0', "bad step refused (%s) without a message", status_name(s));
      for (const fuzz::Snapshot& b : before) TILEKIT_FUZZ_CHECK(b.unchanged(), "a refused step (%d) changed an output", corrupt);
    }
    // One thread, then two: the same bits.
    std::vector<std::vector<float>> first(c.tensors.size());
    for (int threads = 1; threads <= 2; ++threads) {
      for (size_t i = 0; i < c.tensors.size(); ++i) {
        if (!inputs[i].empty()) std::memcpy(g.input_data(c.tensors[i].id), inputs[i].data(), inputs[i].size() * 4);
      }
      const Status s = g.run(st, threads == 2 ? &pool : nullptr);
      TILEKIT_FUZZ_CHECK(s == Status::kOk, "a valid step refused (%s, %d thread(s))", status_name(s), threads);
      for (size_t i = 0; i < c.tensors.size(); ++i) {
        if (!c.tensors[i].output) continue;
        const MatrixView<const float> y = g.output(c.tensors[i].id);
        const size_t rows = c.tensors[i].per_sequence ? seqs.size() : tokens;
        TILEKIT_FUZZ_CHECK(y.data && y.rows == rows && y.cols == c.tensors[i].cols, "output %zu is %zu x %zu", i, y.rows,
                           y.cols);
        if (threads == 1) {
          first[i].assign(y.data, y.data + rows * y.cols);
        } else {
          TILEKIT_FUZZ_CHECK(std::memcmp(first[i].data(), y.data, rows * y.cols * 4) == 0,
                             "output %zu: two threads gave other bits", i);
        }
      }
    }
    const std::vector<EV> want = Evaluate(c, tokens, seq_end, ids.data(), inputs, a_rounded, odd_sums);
    for (size_t i = 0; i < c.tensors.size(); ++i) {
      if (!c.tensors[i].output) continue;
      const EV& r = want[i];
      for (size_t k = 0; k < r.v.size(); ++k) {
        const double err = std::fabs(first[i][k] - r.v[k]);
        TILEKIT_FUZZ_CHECK(err <= r.e[k] + 1e-30, "tensor %zu element %zu: %.9g, reference %.9g (error %.3g > bound %.3g)",
                           i, k, first[i][k], r.v[k], err, r.e[k]);
      }
    }
  }
}

}  // namespace
}  // namespace tilekit

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  tilekit::Run(in);
  tilekit::clear_max_isa();
  return 0;
}
