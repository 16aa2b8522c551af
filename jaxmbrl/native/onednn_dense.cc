// A dense layer through oneDNN's matmul primitive, as an XLA FFI custom call (CPU).
//
//   y[b] = act(x[b] @ w[b] + bias[b])      for every batch index b
//
// x: [..., M, K] float32 or bfloat16; w: [..., K, N], the same dtype and leading dims;
// bias: [..., N] float32; y: [..., M, N] float32. The leading dims (an ensemble's members,
// a vmap's batch) are flattened into one batch axis. Attribute `activation`: 0 none,
// 1 SiLU (oneDNN's swish with alpha 1), 2 ReLU, 3 tanh.
//
// oneDNN picks its kernel from the CPU's features when the primitive is created (AMX or
// avx512_core_bf16 for bfloat16 where the CPU has them). Primitives are cached by shape.
#include <cstdint>
#include <exception>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "xla/ffi/api/ffi.h"

namespace ffi = xla::ffi;

namespace {

// One 2-D layer [m, k] @ [k, n]; dtype and out: 0 float32, 1 bfloat16; act: the
// `activation` attribute's codes.
struct Key {
  int dtype;
  int64_t m, k, n;
  int act;
  int out;
  bool operator==(const Key& o) const {
    return dtype == o.dtype && out == o.out && m == o.m && k == o.k && n == o.n && act == o.act;
  }
};
struct KeyHash {
  size_t operator()(const Key& k) const {
    size_t h = std::hash<int64_t>()(k.m);
    for (int64_t v : {k.k, k.n, (int64_t)k.dtype, (int64_t)k.act, (int64_t)k.out})
      h = h * 1000003u ^ std::hash<int64_t>()(v);
    return h;
  }
};

// 0 for float32, 1 for bfloat16, -1 for any other type.
int TypeCode(ffi::DataType t) {
  if (t == ffi::DataType::F32) return 0;
  if (t == ffi::DataType::BF16) return 1;
  return -1;
}

struct Prim {
  dnnl::matmul::primitive_desc pd;
  dnnl::matmul prim;
};

dnnl::engine& Engine() {
  static dnnl::engine* engine = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *engine;
}

std::mutex cache_mu;
std::unordered_map<Key, Prim, KeyHash>& Cache() {
  static auto* cache = new std::unordered_map<Key, Prim, KeyHash>();
  return *cache;
}

const Prim& Get(const Key& key) {
  std::lock_guard<std::mutex> lock(cache_mu);
  auto it = Cache().find(key);
  if (it != Cache().end()) return it->second;
  using dt = dnnl::memory::data_type;
  using tag = dnnl::memory::format_tag;
  dt in = key.dtype == 1 ? dt::bf16 : dt::f32;
  // One 2-D primitive, run once per batch index: oneDNN 3.2 has no fast (brgemm) kernel for
  // a batched matmul whose bias differs per batch index and falls back to its reference
  // kernel, which is orders of magnitude slower.
  dnnl::memory::desc x_md({key.m, key.k}, in, tag::ab);
  dnnl::memory::desc w_md({key.k, key.n}, in, tag::ab);
  dnnl::memory::desc b_md({1, key.n}, dt::f32, tag::ab);
  dnnl::memory::desc y_md({key.m, key.n}, key.out == 1 ? dt::bf16 : dt::f32, tag::ab);
  dnnl::post_ops ops;
  if (key.act == 1) ops.append_eltwise(dnnl::algorithm::eltwise_swish, 1.f, 0.f);
  if (key.act == 2) ops.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  if (key.act == 3) ops.append_eltwise(dnnl::algorithm::eltwise_tanh, 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_post_ops(ops);
  // XLA may run independent layers (the ensemble's member groups) at once on several
  // threads; oneDNN's library-managed scratchpad is shared between calls, so each call
  // brings its own (a thread-local buffer).
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  dnnl::matmul::primitive_desc pd(Engine(), x_md, w_md, b_md, y_md, attr);
  auto res = Cache().emplace(key, Prim{pd, dnnl::matmul(pd)});
  return res.first->second;
}

ffi::Error DenseImpl(ffi::AnyBuffer x, ffi::AnyBuffer w, ffi::Buffer<ffi::F32> bias,
                     ffi::Result<ffi::AnyBuffer> y, int64_t activation) {
  auto xd = x.dimensions();
  auto wd = w.dimensions();
  auto bd = bias.dimensions();
  auto yd = y->dimensions();
  size_t r = xd.size();
  if (r < 2 || wd.size() != r || bd.size() != r - 1 || yd.size() != r)
    return ffi::Error::InvalidArgument(
        "onednn_dense: x [..., M, K], w [..., K, N], bias [..., N], y [..., M, N]");
  if (x.element_type() != w.element_type())
    return ffi::Error::InvalidArgument("onednn_dense: x and w must have one dtype");
  int dtype = TypeCode(x.element_type());
  if (dtype < 0) return ffi::Error::InvalidArgument("onednn_dense: float32 or bfloat16 operands");
  int out = TypeCode(y->element_type());
  if (out < 0) return ffi::Error::InvalidArgument("onednn_dense: float32 or bfloat16 result");
  if (activation < 0 || activation > 3)
    return ffi::Error::InvalidArgument("onednn_dense: activation 0..3");
  int64_t b = 1;
  for (size_t i = 0; i + 2 < r; ++i) {
    if (xd[i] != wd[i] || xd[i] != bd[i] || xd[i] != yd[i])
      return ffi::Error::InvalidArgument("onednn_dense: leading dims differ");
    b *= xd[i];
  }
  int64_t m = xd[r - 2], k = xd[r - 1], n = wd[r - 1];
  if (wd[r - 2] != k || bd[r - 2] != n || yd[r - 2] != m || yd[r - 1] != n)
    return ffi::Error::InvalidArgument("onednn_dense: inconsistent M, K or N");
  if (k == 0) return ffi::Error::InvalidArgument("onednn_dense: K must be >= 1");
  if (b == 0 || m == 0 || n == 0) return ffi::Error::Success();
  try {
    const Prim& p = Get(Key{dtype, m, k, n, (int)activation, out});
    thread_local dnnl::stream stream(Engine());
    size_t isz = dtype == 1 ? 2 : 4;
    size_t osz = out == 1 ? 2 : 4;
    char* xp = static_cast<char*>(x.untyped_data());
    char* wp = static_cast<char*>(w.untyped_data());
    float* bp = bias.typed_data();
    char* yp = static_cast<char*>(y->untyped_data());
    dnnl::memory xm(p.pd.src_desc(), Engine(), DNNL_MEMORY_NONE);
    dnnl::memory wm(p.pd.weights_desc(), Engine(), DNNL_MEMORY_NONE);
    dnnl::memory bm(p.pd.bias_desc(), Engine(), DNNL_MEMORY_NONE);
    dnnl::memory ym(p.pd.dst_desc(), Engine(), DNNL_MEMORY_NONE);
    thread_local std::vector<char> scratch;
    size_t scratch_size = p.pd.scratchpad_desc().get_size();
    if (scratch.size() < scratch_size) scratch.resize(scratch_size);
    dnnl::memory sm(p.pd.scratchpad_desc(), Engine(), scratch.data());
    for (int64_t i = 0; i < b; ++i) {
      xm.set_data_handle(xp + i * m * k * isz);
      wm.set_data_handle(wp + i * k * n * isz);
      bm.set_data_handle(bp + i * n);
      ym.set_data_handle(yp + i * m * n * osz);
      p.prim.execute(stream, {{DNNL_ARG_SRC, xm},
                              {DNNL_ARG_WEIGHTS, wm},
                              {DNNL_ARG_BIAS, bm},
                              {DNNL_ARG_DST, ym},
                              {DNNL_ARG_SCRATCHPAD, sm}});
    }
    stream.wait();
  } catch (const std::exception& e) {
    // e.g. bfloat16 on a CPU without AVX-512: oneDNN has no kernel ("unimplemented")
    return ffi::Error::Internal(std::string("onednn_dense: oneDNN: ") + e.what());
  }
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(JaxmbrlOnednnDense, DenseImpl,
                              ffi::Ffi::Bind()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::AnyBuffer>()
                                  .Arg<ffi::Buffer<ffi::F32>>()
                                  .Ret<ffi::AnyBuffer>()
                                  .Attr<int64_t>("activation"));

// The implementation oneDNN picks for one layer shape ("brg_matmul:avx512_core_bf16", ...).
// The codes are Key's.
extern "C" const char* jaxmbrl_onednn_impl(int dtype, int64_t m, int64_t k, int64_t n, int act,
                                           int out) {
  static thread_local std::string s;
  try {
    s = Get(Key{dtype, m, k, n, act, out}).pd.impl_info_str();
  } catch (const std::exception& e) {
    s = std::string("unavailable: ") + e.what();
  }
  return s.c_str();
}

extern "C" const char* jaxmbrl_onednn_version() {
  static std::string s;
  const dnnl_version_t* v = dnnl_version();
  s = std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch);
  return s.c_str();
}

extern "C" const char* jaxmbrl_onednn_isa() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_amx_fp16: return "avx512_core_amx_fp16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx2_vnni_2: return "avx2_vnni_2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx2: return "avx2";
    default: return "other";
  }
}
