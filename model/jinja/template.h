// A parsed Jinja template: parse once, render many times with different variables. Rendering
// follows Jinja2 as Hugging Face transformers configures it for chat templates (trim_blocks,
// lstrip_blocks, loopcontrols, the generation tag, tojson as json.dumps, raise_exception,
// strftime_now), with undefined values printing as "" (jinja2.Undefined, not strict).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "model/jinja/ast.h"
#include "model/jinja/evaluator.h"
#include "model/jinja/value.h"

namespace tandem::jinja {

class Template {
 public:
  // A syntax error is InvalidArgument naming the line and column.
  static absl::StatusOr<Template> Parse(absl::string_view source);

  // Errors: InvalidArgument with raise_exception's message verbatim, or prefixed with the
  // Python exception kind ("TypeError: ...", "UndefinedError: ..."); ResourceExhausted when a
  // render limit is hit.
  absl::StatusOr<std::string> Render(const ValueDict& variables,
                                     const RenderOptions& options = {}) const;

 private:
  explicit Template(std::shared_ptr<const StmtList> body) : body_(std::move(body)) {}

  std::shared_ptr<const StmtList> body_;  // shared: copies of a Template are cheap
};

}  // namespace tandem::jinja
