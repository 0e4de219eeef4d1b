// AVX-512 (F/BW/VL) + VNNI kernels: the shared x86 code with VNNI dot products (see
// vec_dot_x86.h).
#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <type_traits>

#include "node/kernels/quants.h"
#include "node/kernels/vec_dot.h"

#pragma GCC target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")
#define TANDEM_X86_VNNI 1

namespace tandem::kernels {
namespace {
#include "node/kernels/vec_dot_x86.h"
}  // namespace

const KernelTable& Avx512Kernels() { return kTable; }

}  // namespace tandem::kernels
