#include "node/kernels/vec_dot.h"

namespace tandem::kernels {

const KernelTable& Avx512Kernels() { return ScalarKernels(); }

}  // namespace tandem::kernels
