#include "model/jinja/template.h"

#include "base/status_macros.h"
#include "model/jinja/lexer.h"
#include "model/jinja/parser.h"

namespace tandem::jinja {

absl::StatusOr<Template> Template::Parse(absl::string_view source) {
  TANDEM_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(source));
  TANDEM_ASSIGN_OR_RETURN(StmtList body, jinja::Parse(tokens));
  return Template(std::make_shared<const StmtList>(std::move(body)));
}

absl::StatusOr<std::string> Template::Render(const ValueDict& variables,
                                             const RenderOptions& options) const {
  return Evaluate(*body_, variables, options);
}

}  // namespace tandem::jinja
