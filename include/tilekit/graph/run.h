// Graph::run (a part of graph.h): the step checked whole before any node runs
// (so a refused step writes no output and no cache row), then each live node
// in order, a call to a kernel of tilekit.h on views of the arena, timed per
// node when the caller asked for a StepProfile.
#ifndef TILEKIT_GRAPH_RUN_H_
#define TILEKIT_GRAPH_RUN_H_

#ifndef TILEKIT_GRAPH_GRAPH_H_
#error "tilekit/graph/run.h is a part of tilekit/graph/graph.h: include that"
#endif

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>

namespace tilekit {
namespace graph_detail {

// A tensor's rows as a norm's rows: each row whole, or `heads` column groups.
template <typename T>
HeadsView<T> norm_rows(const MatrixView<T>& m, size_t heads) {
  return heads_view(m.data, m.rows, heads, m.cols / heads, m.ld);
}

}  // namespace graph_detail

inline Status Graph::check_step(const Step& step) const {
  if (!built_) return fail(Status::kInvalidArgument, "graph: run before build");
  if (!step.seqs || step.num_seqs == 0) return fail(Status::kInvalidArgument, "graph: a step needs sequences");
  if (step.num_seqs > config_.max_sequences) {
    return fail(Status::kInvalidArgument, "graph: %zu sequences in a step, built for at most %zu", step.num_seqs,
                config_.max_sequences);
  }
  size_t tokens = 0;
  const KvCache* cache = config_.kv_cache;
  for (size_t s = 0; s < step.num_seqs; ++s) {
    const SequenceStep& q = step.seqs[s];
    if (q.tokens == 0) return fail(Status::kInvalidArgument, "graph: sequence %zu has no tokens in the step", s);
    tokens += q.tokens;
    if (tokens > config_.max_tokens) {
      return fail(Status::kInvalidArgument, "graph: a step of more than %zu tokens, built for at most %zu", tokens - 1,
                  config_.max_tokens);
    }
    if (q.pos > SIZE_MAX - q.tokens) {
      return fail(Status::kOverflow, "graph: sequence %zu's pos %zu + %zu tokens overflows", s, q.pos, q.tokens);
    }
    // The block table as kv_cache_write and attention read it: what each
    // node's call will check (held blocks; positions before pos written, or,
    // for an attention whose layer no earlier kv_write of the step writes,
    // exactly [0, pos + tokens)), per block, so none refuses after another wrote.
    if (cache) {
      // The table itself, whether or not a node reads it.
      const KvCacheConfig& kc = cache->config();
      const size_t end = q.pos + q.tokens, used = div_ceil(end, kc.block_tokens);
      if (q.num_blocks < used || q.num_blocks > SIZE_MAX / kc.block_tokens) {
        return fail(Status::kInvalidArgument, "graph: sequence %zu's %zu blocks cannot hold %zu tokens%s", s,
                    q.num_blocks, end, q.num_blocks < used ? "" : " (or their tokens overflow size_t)");
      }
      if (!q.blocks) return fail(Status::kNullPointer, "graph: sequence %zu's block table is null", s);
      for (size_t b = 0; b < used; ++b) {
        if (q.blocks[b] >= kc.num_blocks) {
          return fail(Status::kInvalidArgument, "graph: sequence %zu's block %zu is %u, the pool has %zu blocks", s,
                      b, q.blocks[b], kc.num_blocks);
        }
      }
      const KvSequence seq{q.blocks, q.num_blocks, q.pos + q.tokens, q.generations};
      for (size_t i = 0; i < nodes_.size(); ++i) {
        const Node& n = nodes_[i];
        if (n.dead || (n.op != Op::kKvWrite && n.op != Op::kAttention)) continue;
        const size_t layer = n.op == Op::kKvWrite ? n.kv_write.layer : n.attention.layer;
        bool written = n.op == Op::kKvWrite;
        for (size_t j = i; j-- > 0 && !written;) {  // backwards: a layer's kv_write sits just before its attention
          written = !nodes_[j].dead && nodes_[j].op == Op::kKvWrite && nodes_[j].kv_write.layer == layer;
        }
        if (n.op == Op::kAttention && written) continue;  // its write's check covers it
        const Status st = written ? kv_cache_check_step(*cache, layer, seq, q.pos, q.tokens)
                                  : kv_cache_check_step(*cache, layer, seq, q.pos + q.tokens, 0);
        if (st != Status::kOk) {
          char why[256];  // fail() writes the buffer last_error() reads
          std::snprintf(why, sizeof(why), "%s", last_error());
          return fail(st, "graph: sequence %zu: %s", s, why);
        }
      }
    }
  }
  // Two sequences writing one block: the second write would end the first's
  // positions (or race with it), so its attention would refuse mid-step.
  // (Blocks they only read, a shared prefix, are fine.)
  bool writes = false;
  for (const Node& n : nodes_) writes = writes || (!n.dead && n.op == Op::kKvWrite);
  if (cache && writes) {
    const size_t bt = cache->config().block_tokens;
    for (size_t a = 0; a < step.num_seqs; ++a) {
      const SequenceStep& x = step.seqs[a];
      for (size_t b = a + 1; b < step.num_seqs; ++b) {
        const SequenceStep& y = step.seqs[b];
        for (size_t i = x.pos / bt; i < div_ceil(x.pos + x.tokens, bt); ++i) {
          for (size_t j = y.pos / bt; j < div_ceil(y.pos + y.tokens, bt); ++j) {
            if (x.blocks[i] == y.blocks[j]) {
              return fail(Status::kInvalidArgument, "graph: sequences %zu and %zu both write block %u", a, b,
                          x.blocks[i]);
            }
          }
        }
      }
    }
  }
  for (const Node& n : nodes_) {
    if (n.dead) continue;
    if (n.op == Op::kEmbedding) {
      if (!step.token_ids) return fail(Status::kNullPointer, "graph: token_ids is null");
      for (size_t t = 0; t < tokens; ++t) {
        if (step.token_ids[t] < 0 || static_cast<size_t>(step.token_ids[t]) >= n.embedding.vocab) {
          return fail(Status::kInvalidArgument, "graph: token %zu is %d, outside the vocabulary of %zu", t,
                      step.token_ids[t], n.embedding.vocab);
        }
      }
    }
    if (n.op == Op::kRope) {
      for (size_t s = 0; s < step.num_seqs; ++s) {
        if (step.seqs[s].pos + step.seqs[s].tokens > n.rope.table->max_positions()) {
          return fail(Status::kInvalidArgument, "graph: sequence %zu reaches position %zu, RoPE table has %zu", s,
                      step.seqs[s].pos + step.seqs[s].tokens - 1, n.rope.table->max_positions());
        }
      }
    }
  }
  return Status::kOk;
}

inline Status Graph::run(const Step& step, Executor* executor, StepProfile* profile) {
  return profile ? run_step<true>(step, executor, profile) : run_step<false>(step, executor, nullptr);
}

// The interpreter, once with clock reads around each node and once without,
// so an unprofiled run pays nothing for the profile.
template <bool kProfiled>
inline Status Graph::run_step(const Step& step, Executor* executor, StepProfile* profile) {
  using clock = std::chrono::steady_clock;
  const auto ns_since = [](clock::time_point t0) {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(clock::now() - t0).count());
  };
  clock::time_point start;
  if constexpr (kProfiled) start = clock::now();
  StepProfile this_run;  // added to *profile when the whole step succeeded
  const Status st = check_step(step);
  if (st != Status::kOk) return st;
  step_seqs_ = step.num_seqs;
  step_tokens_ = 0;
  for (size_t s = 0; s < step.num_seqs; ++s) {
    for (size_t i = 0; i < step.seqs[s].tokens; ++i) {
      positions_[step_tokens_ + i] = static_cast<int32_t>(step.seqs[s].pos + i);
    }
    step_tokens_ += step.seqs[s].tokens;
  }
  for (Node& n : nodes_) {
    if (n.dead) continue;
    if constexpr (kProfiled) {
      const clock::time_point t0 = clock::now();
      const Status s = run_node(n, step, executor);
      const size_t kind = static_cast<size_t>(graph_detail::kind_of(n.op));
      this_run.ns[kind] += ns_since(t0);
      ++this_run.nodes[kind];
      if (s != Status::kOk) return s;
    } else {
      const Status s = run_node(n, step, executor);
      if (s != Status::kOk) return s;
    }
  }
  if constexpr (kProfiled) {
    this_run.step_ns = ns_since(start);
    this_run.steps = 1;
    *profile += this_run;
  }
  return Status::kOk;
}

inline Status Graph::run_node(Node& n, const Step& step, Executor* ex) {
  const size_t rows = n.a != kNoTensor ? rows_at(tensors_[n.a].rows) : step_tokens_;
  switch (n.op) {
    case Op::kInput: return Status::kOk;
    case Op::kEmbedding: {
      const MatrixView<float> y = view(n.out);
      for (size_t t = 0; t < y.rows; ++t) {
        std::memcpy(y.data + t * y.ld, n.embedding.table + static_cast<size_t>(step.token_ids[t]) * y.cols,
                    y.cols * sizeof(float));
      }
      return Status::kOk;
    }
    case Op::kLastTokens: {
      const MatrixView<float> x = view(n.a), y = view(n.out);
      size_t end = 0;
      for (size_t s = 0; s < step.num_seqs; ++s) {
        end += step.seqs[s].tokens;
        std::memcpy(y.data + s * y.ld, x.data + (end - 1) * x.ld, x.cols * sizeof(float));
      }
      return Status::kOk;
    }
    case Op::kLinear: {
      GemmOptions go;
      go.executor = ex;
      graph_detail::LinearArgs& l = n.linear;
      for (size_t s = 0; s < l.fused.size(); ++s) {
        const graph_detail::Segment& seg = l.segs[s];
        Epilogue& e = l.fused[s].epilogue;
        e = Epilogue();
        e.bias = seg.bias.empty() ? nullptr : seg.bias.data();
        e.activation = seg.activation;
        if (l.residual != kNoTensor) e.with_residual(data(l.residual), tensors_[l.residual].cols);
        l.fused[s].c = view(seg.out);
      }
      const PackedWeights& w = packed_[l.packed];
      if (l.fused.size() == 1) return gemm(view(n.a), w, l.fused[0].c, l.fused[0].epilogue, go);
      return gemm_fused(view(n.a), w, l.fused.data(), l.fused.size(), go);
    }
    case Op::kRmsNorm: {
      RmsNormOptions o;
      o.eps = n.norm.eps;
      o.weight_offset = n.norm.weight_offset;
      o.executor = ex;
      using graph_detail::norm_rows;
      return tilekit::rms_norm(norm_rows(MatrixView<const float>(view(n.a)), n.norm.heads), n.norm.weight.data(),
                               norm_rows(view(n.out), n.norm.heads), o);
    }
    case Op::kAddRmsNorm: {
      RmsNormOptions o;
      o.eps = n.norm.eps;
      o.weight_offset = n.norm.weight_offset;
      o.executor = ex;
      MatrixView<float> sum = view(n.out2);
      if (!same_buffer(n.out2, n.b)) {
        const MatrixView<float> r = view(n.b);
        for (size_t t = 0; t < rows; ++t) std::memcpy(sum.data + t * sum.ld, r.data + t * r.ld, r.cols * sizeof(float));
      }
      using graph_detail::norm_rows;
      return tilekit::add_rms_norm(norm_rows(MatrixView<const float>(view(n.a)), n.norm.heads),
                                   norm_rows(sum, n.norm.heads), n.norm.weight.data(),
                                   norm_rows(view(n.out), n.norm.heads), o);
    }
    // In place over a (or b) when it dies here (lifetimes.h): y is then that
    // input exactly, which the row ops allow.
    case Op::kAdd:
    case Op::kMul: {
      ElementwiseOptions o;
      o.executor = ex;
      const MatrixView<const float> a = view(n.a), b = view(n.b);
      return n.op == Op::kAdd ? tilekit::add(a, b, view(n.out), o) : tilekit::mul(a, b, view(n.out), o);
    }
    case Op::kScale:
    case Op::kSoftcap: {
      ElementwiseOptions o;
      o.executor = ex;
      const MatrixView<const float> x = view(n.a);
      return n.op == Op::kScale ? tilekit::scale(x, n.scalar.value, view(n.out), o)
                                : tilekit::softcap(x, n.scalar.value, view(n.out), o);
    }
    case Op::kRope: {
      const RopeTable& table = *n.rope.table;
      const size_t d = table.head_dim();
      const MatrixView<float> q = view(n.a), k = view(n.b);
      return tilekit::rope(heads_view(q.data, rows, q.cols / d, d, q.ld), heads_view(k.data, rows, k.cols / d, d, k.ld),
                           positions_.data(), table, ex);
    }
    case Op::kKvWrite: {
      KvCache& cache = *config_.kv_cache;
      const size_t d = cache.config().head_dim, dv = cache.config().v_head_dim ? cache.config().v_head_dim : d;
      const MatrixView<float> k = view(n.a), v = view(n.b);
      size_t row = 0;
      for (size_t s = 0; s < step.num_seqs; ++s) {
        const SequenceStep& q = step.seqs[s];
        const KvSequence seq{q.blocks, q.num_blocks, q.pos + q.tokens, q.generations};
        const Status st = kv_cache_write(cache, n.kv_write.layer, seq, q.pos,
                                         heads_view<const float>(k.data + row * k.ld, q.tokens, k.cols / d, d, k.ld),
                                         heads_view<const float>(v.data + row * v.ld, q.tokens, v.cols / dv, dv, v.ld));
        if (st != Status::kOk) return st;
        row += q.tokens;
      }
      return Status::kOk;
    }
    case Op::kAttention: {
      const size_t heads = n.attention.heads;
      const MatrixView<float> q = view(n.a), o = view(n.out);
      const size_t d = q.cols / heads;
      size_t row = 0;
      for (size_t s = 0; s < step.num_seqs; ++s) {
        const SequenceStep& sq = step.seqs[s];
        AttentionBatchItem& it = items_[s];
        it.q = heads_view<const float>(q.data + row * q.ld, sq.tokens, heads, d, q.ld);
        it.seq = KvSequence{sq.blocks, sq.num_blocks, sq.pos + sq.tokens, sq.generations};
        it.out = heads_view(o.data + row * o.ld, sq.tokens, heads, d, o.ld);
        it.lse = nullptr;
        row += sq.tokens;
      }
      AttentionParams p;
      p.mask.causal = true;
      p.mask.window = n.attention.window;
      p.mask.softcap = n.attention.softcap;
      p.scale = n.attention.scale;
      p.executor = ex;
      return attention_batch(*config_.kv_cache, n.attention.layer, items_.data(), step.num_seqs, p);
    }
  }
  return Status::kOk;
}

inline MatrixView<const float> Graph::output(TensorId t) const {
  if (!built_ || t >= tensors_.size()) return {};
  return view(t);
}

inline float* Graph::input_data(TensorId t) const { return built_ && t < tensors_.size() ? data(t) : nullptr; }

inline float* Graph::data(TensorId t) const {
  unsigned char* arena = arena_.as<unsigned char>();
  return arena ? reinterpret_cast<float*>(arena + offsets_[buffer_of_[t]]) : nullptr;
}

inline MatrixView<float> Graph::view(TensorId t) const {
  return MatrixView<float>{data(t), rows_at(tensors_[t].rows), tensors_[t].cols, tensors_[t].cols};
}

}  // namespace tilekit

#endif  // TILEKIT_GRAPH_RUN_H_
