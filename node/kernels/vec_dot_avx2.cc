// AVX2 + FMA + F16C kernels (see vec_dot_x86.h).
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "node/kernels/quants.h"
#include "node/kernels/vec_dot.h"

#pragma GCC target("avx2,fma,f16c")

namespace tandem::kernels {
namespace {
#include "node/kernels/vec_dot_x86.h"
}  // namespace

const KernelTable& Avx2Kernels() { return kTable; }

}  // namespace tandem::kernels
