#include "coordinator/dashboard_assets.h"

namespace tandem {

const DashboardAsset* FindDashboardAsset(std::string_view path) {
  path = path.substr(0, path.find_first_of("?#"));
  if (path.empty() || path == "/") path = "/index.html";
  for (const DashboardAsset& asset : DashboardAssets()) {
    if (asset.path == path) return &asset;
  }
  return nullptr;
}

}  // namespace tandem
