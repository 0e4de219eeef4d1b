#include "net/frames.h"

#include <algorithm>
#include <cstring>

#include "base/fp16.h"
#include "net/convert.h"

namespace tandem {

size_t WireDtypeSize(v1::WireDtype dtype) { return dtype == v1::WIRE_DTYPE_F16 ? 2 : 4; }

std::string EncodeActivations(const float* x, int64_t n, v1::WireDtype dtype) {
  std::string out(static_cast<size_t>(n) * WireDtypeSize(dtype), '\0');
  if (dtype == v1::WIRE_DTYPE_F16) {
    auto* h = reinterpret_cast<uint16_t*>(out.data());
    for (int64_t i = 0; i < n; ++i) h[i] = Fp32ToFp16(x[i]);
  } else {
    std::memcpy(out.data(), x, out.size());
  }
  return out;
}

void DecodeActivations(const std::string& bytes, v1::WireDtype dtype, int64_t n, float* out) {
  if (dtype == v1::WIRE_DTYPE_F16) {
    const auto* h = reinterpret_cast<const uint16_t*>(bytes.data());
    for (int64_t i = 0; i < n; ++i) out[i] = Fp16ToFp32(h[i]);
  } else {
    std::memcpy(out, bytes.data(), static_cast<size_t>(n) * sizeof(float));
  }
}

int64_t PrefillChunkTokens(int64_t n_embd) {
  return std::clamp<int64_t>(
      static_cast<int64_t>(kMaxFrameBytes) /
          (std::max<int64_t>(1, n_embd) * static_cast<int64_t>(sizeof(float))),
      1, kMaxFrameTokens);
}

std::vector<v1::ActivationFrame> HistoryFrames(uint64_t session_id, uint64_t plan_epoch,
                                               absl::Span<const TokenId> history, int64_t from,
                                               int64_t chunk_tokens,
                                               const SamplingParams& sampling) {
  std::vector<v1::ActivationFrame> frames;
  const int64_t end = static_cast<int64_t>(history.size());
  for (int64_t pos = from; pos < end; pos += chunk_tokens) {
    const int64_t n = std::min(chunk_tokens, end - pos);
    v1::ActivationFrame f;
    f.set_protocol_version(kProtocolVersion);
    f.set_session_id(session_id);
    f.set_plan_epoch(plan_epoch);
    f.set_position(pos);
    f.set_n_tokens(static_cast<int32_t>(n));
    for (int64_t i = pos; i < pos + n; ++i) f.add_tokens(history[i]);
    if (pos + n == end) {
      f.set_sample(true);
      *f.mutable_sampling() = SamplingToProto(sampling);
      if (UsesRecentTokens(sampling)) {
        const int64_t first = std::max<int64_t>(0, end - sampling.repeat_last_n);
        for (int64_t i = first; i < end; ++i) f.add_recent_tokens(history[i]);
      }
    }
    frames.push_back(std::move(f));
  }
  return frames;
}

v1::ActivationFrame EndSessionFrame(uint64_t session_id, uint64_t plan_epoch) {
  v1::ActivationFrame end;
  end.set_protocol_version(kProtocolVersion);
  end.set_session_id(session_id);
  end.set_plan_epoch(plan_epoch);
  end.set_end_session(true);
  return end;
}

}  // namespace tandem
