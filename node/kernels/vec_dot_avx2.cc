#include "node/kernels/vec_dot.h"

namespace tandem::kernels {

const KernelTable& Avx2Kernels() { return ScalarKernels(); }

}  // namespace tandem::kernels
