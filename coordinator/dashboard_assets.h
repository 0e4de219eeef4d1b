// The dashboard's web files (dashboard/*.html, *.css, *.js), compiled into the binary at
// build time by cmake/embed_files.cmake, so the coordinator serves them with no files to
// install. The HTTP server answers GET <path> with FindDashboardAsset(path).
#pragma once

#include <span>
#include <string_view>

namespace tandem {

struct DashboardAsset {
  std::string_view path;  // "/index.html", "/dashboard.js", ...
  std::string_view content_type;
  std::string_view body;
};

// Every embedded file (generated).
std::span<const DashboardAsset> DashboardAssets();

// The file for a request path ("/" is "/index.html"; a query string is ignored); null when
// there is none.
const DashboardAsset* FindDashboardAsset(std::string_view path);

}  // namespace tandem
