#include "onednn_layer_norm.h"

#include <omp.h>

#include <memory>
#include <oneapi/dnnl/dnnl.hpp>

namespace tilekit_bench {

std::function<void()> MakeOnednnLayerNorm(bool bf16, size_t m, size_t n, int threads, void* x, void* y, float* scale) {
  using dnnl::memory;
  omp_set_num_threads(threads);
  struct Instance {
    dnnl::engine engine{dnnl::engine::kind::cpu, 0};
    dnnl::stream stream{engine};
    dnnl::layer_normalization_forward prim;
    memory src, dst, scale;
  };
  auto inst = std::make_shared<Instance>();
  const memory::desc md({static_cast<memory::dim>(m), static_cast<memory::dim>(n)},
                        bf16 ? memory::data_type::bf16 : memory::data_type::f32, memory::format_tag::ab);
  const dnnl::layer_normalization_forward::desc d(dnnl::prop_kind::forward_inference, md, 1e-6f,
                                                  dnnl::normalization_flags::use_scale);
  const dnnl::layer_normalization_forward::primitive_desc pd(d, inst->engine);
  inst->prim = dnnl::layer_normalization_forward(pd);
  inst->src = memory(md, inst->engine, x);
  inst->dst = memory(md, inst->engine, y);
  inst->scale = memory(pd.query_md(dnnl::query::exec_arg_md, DNNL_ARG_SCALE), inst->engine, scale);
  return [inst] {
    inst->prim.execute(inst->stream,
                       {{DNNL_ARG_SRC, inst->src}, {DNNL_ARG_DST, inst->dst}, {DNNL_ARG_SCALE, inst->scale}});
    inst->stream.wait();
  };
}

std::string OnednnVersion() {
  const dnnl_version_t* v = dnnl_version();
  return std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
}

}  // namespace tilekit_bench
