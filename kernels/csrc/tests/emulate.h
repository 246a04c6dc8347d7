// Runs the CUDA kernels of src/ on the CPU, compiled by the host C++ compiler with -DDEBLUR_EMULATE:
// a block's threads are fibers (started with ucontext, switched with _setjmp/_longjmp, which make no
// system call) scheduled round-robin, __syncthreads() yields to the
// scheduler until every thread of the block has arrived, __shared__ arrays are shared by the block,
// warp shuffles exchange through a block-wide slot array (our kernels call them uniformly), and
// "device memory" is host memory (cudaMalloc/cudaMemcpy below). Blocks run one after another.
//
// It checks the kernels' indexing, masking, tiling, synchronisation and arithmetic where no GPU
// exists; not what only hardware shows (the CUDA compiler's code, timing, races between warps that
// real hardware would run concurrently beyond what the barriers order).
#pragma once

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <setjmp.h>
#include <ucontext.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <tuple>
#include <vector>

#undef __global__
#undef __device__
#undef __forceinline__
#undef __launch_bounds__
#undef __shared__
#define __global__
#define __device__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static

namespace deblur::emulate {

struct Fiber {
  ucontext_t start{};
  jmp_buf resume{};
  uint3 index{};
  bool started = false;
  bool done = false;
  std::unique_ptr<char[]> stack;
};

constexpr std::size_t kStackBytes = 128 * 1024;

inline Fiber* g_current = nullptr;
inline jmp_buf g_scheduler{};
inline ucontext_t g_scheduler_context{};
inline uint3 g_block{};
inline dim3 g_block_dim{};
inline std::vector<float> g_slots;       // one per thread, for shuffles
inline void (*g_entry)() = nullptr;      // the block body of the current launch
inline std::vector<std::unique_ptr<Fiber>> g_pool;  // reused by every block: created and started once

// A barrier: back to the scheduler, which resumes this fiber once every thread has arrived.
inline void sync() {
  if (_setjmp(g_current->resume) == 0) _longjmp(g_scheduler, 1);
}

inline unsigned linear_id() {
  return g_current->index.x + g_block_dim.x * (g_current->index.y + g_block_dim.y * g_current->index.z);
}

inline float shfl_xor(float value, int offset) {
  unsigned const me = linear_id();
  g_slots[me] = value;
  sync();
  float const other = g_slots[(me & ~31u) | ((me & 31u) ^ static_cast<unsigned>(offset))];
  sync();
  return other;
}

// A fiber runs one thread's body per block, then parks until the next block.
inline void fiber_main() {
  for (;;) {
    g_entry();
    g_current->done = true;
    sync();
  }
}

// Runs g_entry once per thread of one block, honouring barriers; aborts on a divergent barrier.
inline void run_block(dim3 block) {
  unsigned const n = block.x * block.y * block.z;
  while (g_pool.size() < n) {
    auto f = std::make_unique<Fiber>();
    f->stack.reset(new char[kStackBytes]);
    getcontext(&f->start);
    f->start.uc_stack.ss_sp = f->stack.get();
    f->start.uc_stack.ss_size = kStackBytes;
    f->start.uc_link = nullptr;
    makecontext(&f->start, fiber_main, 0);
    g_pool.push_back(std::move(f));
  }
  g_slots.assign(n, 0.0f);
  g_block_dim = block;
  for (unsigned i = 0; i < n; ++i) {
    g_pool[i]->index = uint3{i % block.x, (i / block.x) % block.y, i / (block.x * block.y)};
    g_pool[i]->done = false;
  }
  for (;;) {
    unsigned finished = 0;
    for (unsigned i = 0; i < n; ++i) {
      Fiber& f = *g_pool[i];
      if (!f.done) {
        g_current = &f;
        if (_setjmp(g_scheduler) == 0) {
          if (f.started) _longjmp(f.resume, 1);
          f.started = true;
          swapcontext(&g_scheduler_context, &f.start);  // first entry only
        }
      }
      finished += f.done ? 1 : 0;
    }
    if (finished == n) return;
    if (finished != 0) {
      std::fprintf(stderr, "emulate: %u of %u threads finished while others wait at a barrier\n", finished, n);
      std::abort();
    }
  }
}

template <typename... Params, typename... Args>
void launch(void (*kernel)(Params...), dim3 grid, dim3 block, Args... args) {
  static void (*s_kernel)(Params...);
  static std::tuple<Args...>* s_args;
  std::tuple<Args...> packed(args...);
  s_kernel = kernel;
  s_args = &packed;
  g_entry = [] { std::apply([](auto... a) { s_kernel(a...); }, *s_args); };
  for (unsigned z = 0; z < grid.z; ++z)
    for (unsigned y = 0; y < grid.y; ++y)
      for (unsigned x = 0; x < grid.x; ++x) {
        g_block = uint3{x, y, z};
        run_block(block);
      }
}

}  // namespace deblur::emulate

#define threadIdx (::deblur::emulate::g_current->index)
#define blockIdx (::deblur::emulate::g_block)
#define blockDim (::deblur::emulate::g_block_dim)
#define __syncthreads() ::deblur::emulate::sync()
#define __shfl_xor_sync(mask, value, offset) ::deblur::emulate::shfl_xor((value), (offset))
#define __expf(x) std::exp(x)
