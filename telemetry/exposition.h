// The Prometheus text exposition (format 0.0.4) of a metrics registry: what a /metrics
// route answers. prometheus-cpp's TextSerializer writes it; this only gathers and names it.
#pragma once

#include <string>

#include "prometheus/registry.h"

namespace tandem {

inline constexpr char kPrometheusContentType[] = "text/plain; version=0.0.4; charset=utf-8";

std::string RenderPrometheusText(prometheus::Registry& registry);

}  // namespace tandem
