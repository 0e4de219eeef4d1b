// Walks a parsed template and writes its output, with Jinja2's scoping: a `for` body gets a
// fresh scope each iteration (its `set`s do not leak out or into the next iteration), a macro
// call gets its own scope whose parent is where the macro was defined, `if` opens none, and
// namespace() objects are shared by reference so they carry values out of loops.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "model/jinja/ast.h"
#include "model/jinja/globals.h"
#include "model/jinja/value.h"

namespace tandem::jinja {

// A template can come from a file someone else made; these bound what rendering it may cost.
struct RenderLimits {
  size_t max_output_bytes = 16u << 20;  // also the largest string or list built on the way
  int max_depth = 500;                  // nested macro calls, blocks and expressions together
  int max_macro_depth = 100;            // nested macro calls alone
  int64_t max_steps = 1'000'000;        // statements executed plus loop iterations
  size_t max_range = 100'000;           // numbers one range() call may produce
};

struct RenderOptions {
  RenderLimits limits;
  Clock clock = LocalNow;  // what strftime_now formats
};

// Renders `body` with `variables` as the template's context (on top of the globals).
absl::StatusOr<std::string> Evaluate(const StmtList& body, const ValueDict& variables,
                                     const RenderOptions& options);

}  // namespace tandem::jinja
