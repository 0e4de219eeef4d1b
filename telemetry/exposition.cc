#include "telemetry/exposition.h"

#include "prometheus/text_serializer.h"

namespace tandem {

std::string RenderPrometheusText(prometheus::Registry& registry) {
  return prometheus::TextSerializer().Serialize(registry.Collect());
}

}  // namespace tandem
