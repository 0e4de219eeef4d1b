#include "node/weight_loader.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "node/kernels/matmul.h"

namespace tandem {

absl::StatusOr<const float*> WeightLoader::Vector(const std::string& name, int64_t n) {
  TANDEM_ASSIGN_OR_RETURN(const GgufTensor* t, file_.GetTensor(name, {n}));
  if (t->type != GgmlType::kF32) {
    return absl::InvalidArgumentError(absl::StrCat(file_.path(), ": tensor '", name, "' is ",
                                                   GgmlTypeName(t->type), ", expected f32"));
  }
  // Copied, so the mapped pages (and any large folio around them) can be released.
  const float* src = reinterpret_cast<const float*>(t->data);
  vectors_->emplace_back(src, src + n);
  *bytes_ += t->size_bytes;
  file_.DontNeed(*t);
  return vectors_->back().data();
}

absl::StatusOr<PreparedMatrix> WeightLoader::Matrix(const std::string& name, int64_t rows,
                                                    int64_t cols) {
  TANDEM_ASSIGN_OR_RETURN(std::vector<PreparedMatrix> parts, SplitRows(name, {rows}, cols));
  return std::move(parts[0]);
}

absl::StatusOr<std::vector<PreparedMatrix>> WeightLoader::SplitRows(
    const std::string& name, const std::vector<int64_t>& rows, int64_t cols) {
  int64_t total = 0;
  for (int64_t r : rows) total += r;
  TANDEM_ASSIGN_OR_RETURN(const GgufTensor* t, file_.GetTensor(name, {cols, total}));
  if (!MatMulSupports(t->type)) {
    return absl::UnimplementedError(absl::StrCat(file_.path(), ": tensor '", name, "' has type ",
                                                 GgmlTypeName(t->type),
                                                 ", which this build cannot multiply"));
  }
  *bytes_ += t->size_bytes;
  // GetTensor checked that the rows fit the file: each part is a whole number of rows.
  const int64_t row_bytes = RowBytes(t->type, cols);
  std::vector<PreparedMatrix> parts;
  int64_t row_first = 0;
  for (int64_t r : rows) {
    const WeightMatrix view{t->type, r, cols, t->data + row_first * row_bytes};
    row_first += r;
    if (!options_.repack) {
      TANDEM_ASSIGN_OR_RETURN(PreparedMatrix m, Prepare(view, {.repack = false}));
      parts.push_back(std::move(m));
      continue;
    }
    TANDEM_ASSIGN_OR_RETURN(PreparedMatrix m, Prepare(view));
    parts.push_back(std::move(m));
  }
  if (options_.repack) {
    // The copies are what we read from now on: give the file's pages back.
    file_.DontNeed(*t);
  } else {
    file_.WillNeed(*t);
  }
  return parts;
}

}  // namespace tandem
