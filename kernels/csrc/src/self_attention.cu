// MSAN's global self-attention, out = v · softmax(scale · qᵀk)ᵀ, flash-style: a block owns 32
// queries and streams over keys in tiles of 32 with an online softmax (running max and sum in
// shared memory, exp2 with log2(e) folded into the scale), so the N x M matrix never exists and
// memory is O((N + M) * C). Keys past the end are masked, so N and M need not be multiples of 32.
//
// Block: 256 threads = 8 warps. Scores: lane = query, each warp 4 key columns, q/k channels in
// chunks of 32 through shared memory. Softmax: a warp per row (lane = key). Output: lane = query,
// each warp CPT consecutive v channels in registers, v tile stored key-major so one 128-bit load
// feeds 4 FMAs. A block covers up to 128 v channels; wider v takes several blocks along y, each
// recomputing the scores.
//
// Expected bound (CUDA-core FP32): 2*N*M*(D + Dv) FLOP, e.g. MSAN at 1/4 of 720p (N = M = 14,400,
// D = Dv = 128): 106 GFLOP, FMA bound: ~20 ms on Orin AGX (5.3 TFLOPS), ~1.6 ms on H100 (67 TFLOPS).
// Traffic is only O((N + M) * C) per query tile. The Triton kernel uses tensor cores (tl.dot) and is
// the faster path where it runs; a tensor-core (mma) version of this one is future work.
#include <cmath>

#include "common.cuh"

namespace deblur {
namespace detail {

constexpr int kAttnThreads = 256;
constexpr int kQueries = 32;
constexpr int kKeys = 32;
constexpr int kQkChunk = 32;
constexpr float kLog2e = 1.4426950408889634f;

template <typename T, int CPT>
__global__ void __launch_bounds__(kAttnThreads)
attention_kernel(T const* __restrict__ q, T const* __restrict__ k, T const* __restrict__ v, T* __restrict__ out,
                 float scale_log2, int qk_channels, int v_channels, int n_queries, int n_keys) {
  static_assert(CPT % 4 == 0, "channels per thread must allow float4 loads");
  constexpr int kTileV = 8 * CPT;
  __shared__ float qs[kQkChunk][kQueries];
  __shared__ float ks[kQkChunk][kKeys];
  __shared__ float probs[kQueries][kKeys + 1];  // +1: lane-per-row reads hit distinct banks
  __shared__ __align__(16) float vs[kKeys][kTileV];
  __shared__ float row_max[kQueries];
  __shared__ float row_sum[kQueries];
  __shared__ float row_rescale[kQueries];

  int const b = blockIdx.z;
  int const n0 = blockIdx.x * kQueries;
  int const c0 = blockIdx.y * kTileV;
  int const lane = threadIdx.x & 31;
  int const warp = threadIdx.x >> 5;
  T const* qb = q + static_cast<long long>(b) * qk_channels * n_queries;
  T const* kb = k + static_cast<long long>(b) * qk_channels * n_keys;
  T const* vb = v + static_cast<long long>(b) * v_channels * n_keys;

  if (threadIdx.x < kQueries) {
    row_max[threadIdx.x] = -INFINITY;
    row_sum[threadIdx.x] = 0.0f;
  }
  float acc[CPT];
#pragma unroll
  for (int i = 0; i < CPT; ++i) acc[i] = 0.0f;

  for (int m0 = 0; m0 < n_keys; m0 += kKeys) {
    float score[4] = {0.0f, 0.0f, 0.0f, 0.0f};  // query `lane`, keys warp + 8 * r
    for (int d0 = 0; d0 < qk_channels; d0 += kQkChunk) {
      __syncthreads();  // previous readers of qs/ks (and of probs/vs, on the first chunk) are done
      for (int i = threadIdx.x; i < kQkChunk * kQueries; i += kAttnThreads) {
        int const d = d0 + i / kQueries;
        int const t = i % kQueries;
        bool const d_ok = d < qk_channels;
        qs[i / kQueries][t] =
            (d_ok && n0 + t < n_queries) ? to_float(qb[static_cast<long long>(d) * n_queries + n0 + t]) : 0.0f;
        ks[i / kQueries][t] =
            (d_ok && m0 + t < n_keys) ? to_float(kb[static_cast<long long>(d) * n_keys + m0 + t]) : 0.0f;
      }
      __syncthreads();
#pragma unroll 8
      for (int d = 0; d < kQkChunk; ++d) {
        float const qv = qs[d][lane];
#pragma unroll
        for (int r = 0; r < 4; ++r) score[r] = fmaf(qv, ks[d][warp + 8 * r], score[r]);
      }
    }
#pragma unroll
    for (int r = 0; r < 4; ++r) {
      int const key = warp + 8 * r;
      probs[lane][key] = (m0 + key < n_keys) ? score[r] * scale_log2 : -INFINITY;
    }
    for (int i = threadIdx.x; i < kKeys * kTileV; i += kAttnThreads) {
      int const key = i % kKeys;  // consecutive threads read consecutive keys: coalesced
      int const c = c0 + i / kKeys;
      vs[key][i / kKeys] =
          (c < v_channels && m0 + key < n_keys) ? to_float(vb[static_cast<long long>(c) * n_keys + m0 + key]) : 0.0f;
    }
    __syncthreads();

    // Online softmax, a warp per row: the tile always holds at least one real key, so the new
    // maximum is finite and masked keys get exp2(-inf) = 0.
#pragma unroll
    for (int r = 0; r < kQueries / 8; ++r) {
      int const row = warp + 8 * r;
      float const s = probs[row][lane];
      float const previous = row_max[row];
      float const top = fmaxf(previous, warp_max(s));
      float const p = exp2f(s - top);
      probs[row][lane] = p;
      float const total = warp_sum(p);
      if (lane == 0) {
        float const rescale = exp2f(previous - top);
        row_rescale[row] = rescale;
        row_max[row] = top;
        row_sum[row] = row_sum[row] * rescale + total;
      }
    }
    __syncthreads();

    float const rescale = row_rescale[lane];
#pragma unroll
    for (int i = 0; i < CPT; ++i) acc[i] *= rescale;
#pragma unroll 4
    for (int key = 0; key < kKeys; ++key) {
      float const p = probs[lane][key];
      float4 const* v4 = reinterpret_cast<float4 const*>(&vs[key][warp * CPT]);
#pragma unroll
      for (int i4 = 0; i4 < CPT / 4; ++i4) {
        float4 const w = v4[i4];
        acc[4 * i4 + 0] = fmaf(p, w.x, acc[4 * i4 + 0]);
        acc[4 * i4 + 1] = fmaf(p, w.y, acc[4 * i4 + 1]);
        acc[4 * i4 + 2] = fmaf(p, w.z, acc[4 * i4 + 2]);
        acc[4 * i4 + 3] = fmaf(p, w.w, acc[4 * i4 + 3]);
      }
    }
  }

  int const n = n0 + lane;
  if (n >= n_queries) return;
  float const inv = 1.0f / row_sum[lane];
  T* ob = out + static_cast<long long>(b) * v_channels * n_queries;
#pragma unroll
  for (int i = 0; i < CPT; ++i) {
    int const c = c0 + warp * CPT + i;
    if (c < v_channels) ob[static_cast<long long>(c) * n_queries + n] = from_float<T>(acc[i] * inv);
  }
}

template <typename T>
cudaError_t self_attention_typed(void const* q, void const* k, void const* v, void* out, float scale, int batch,
                                 int qk_channels, int v_channels, int n_queries, int n_keys, cudaStream_t stream) {
  auto const* qt = static_cast<T const*>(q);
  auto const* kt = static_cast<T const*>(k);
  auto const* vt = static_cast<T const*>(v);
  auto* ot = static_cast<T*>(out);
  float const scale_log2 = scale * kLog2e;
  int const cpt = v_channels > 64 ? 16 : v_channels > 32 ? 8 : 4;
  auto* kernel = cpt == 16 ? &attention_kernel<T, 16> : cpt == 8 ? &attention_kernel<T, 8> : &attention_kernel<T, 4>;
  dim3 const grid(ceil_div(n_queries, kQueries), ceil_div(v_channels, 8 * cpt), batch);
  DEBLUR_LAUNCH(kernel, grid, dim3(kAttnThreads), stream, qt, kt, vt, ot, scale_log2, qk_channels, v_channels,
                n_queries, n_keys);
  return cudaGetLastError();
}

}  // namespace detail

cudaError_t self_attention(DType dtype, void const* q, void const* k, void const* v, void* out, float scale,
                           int batch, int qk_channels, int v_channels, int n_queries, int n_keys,
                           cudaStream_t stream) {
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr || qk_channels <= 0 || v_channels <= 0 ||
      n_queries <= 0 || n_keys <= 0 || !std::isfinite(scale) ||
      !detail::sizes_ok(static_cast<long long>(batch) * qk_channels * n_queries, batch) ||
      !detail::sizes_ok(static_cast<long long>(batch) * qk_channels * n_keys, batch) ||
      !detail::sizes_ok(static_cast<long long>(batch) * v_channels * n_keys, batch) ||
      !detail::sizes_ok(static_cast<long long>(batch) * v_channels * n_queries, batch)) {
    return cudaErrorInvalidValue;
  }
  if (dtype == DType::kFloat16) {
    return detail::self_attention_typed<__half>(q, k, v, out, scale, batch, qk_channels, v_channels, n_queries, n_keys,
                                                stream);
  }
  return detail::self_attention_typed<float>(q, k, v, out, scale, batch, qk_channels, v_channels, n_queries, n_keys,
                                             stream);
}

}  // namespace deblur
