// The CUDA kernels run on the CPU through emulate.h, checked by the same test as on a GPU
// (test_kernels.cu) at smaller attention sizes. Built by the host C++ compiler, needs no GPU.
#include "emulated_kernels.h"

#include "test_kernels.cu"
