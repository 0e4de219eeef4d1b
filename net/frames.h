// The wire's vocabulary for activation frames: the protocol version, the frame-size
// limit, how activations are encoded, and how a session's token history becomes the
// frames that feed it to the first stage.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "base/sampling.h"
#include "tandem.pb.h"

namespace tandem {

inline constexpr uint32_t kProtocolVersion = 1;
// Frames carry at most this many bytes of activations (prefills are chunked to fit).
inline constexpr size_t kMaxFrameBytes = 1 << 20;
// ...and at most this many tokens, so that one frame never outgrows a node's batch
// (NodeOptions::max_batch_tokens is at least this) nor its scratch buffers.
inline constexpr int kMaxFrameTokens = 512;
// A frame's encoded size may exceed its activations by this much (ids, sampling, recent
// tokens); anything larger is refused before it is queued.
inline constexpr size_t kMaxFrameOverheadBytes = 64 << 10;

// Activations on the wire.
size_t WireDtypeSize(v1::WireDtype dtype);
std::string EncodeActivations(const float* x, int64_t n, v1::WireDtype dtype);
// `bytes` must hold exactly n values of dtype.
void DecodeActivations(const std::string& bytes, v1::WireDtype dtype, int64_t n, float* out);

// Tokens per prefill frame so that a frame of f32 activations fits kMaxFrameBytes, and at
// most kMaxFrameTokens.
int64_t PrefillChunkTokens(int64_t n_embd);

// The frames that feed history[from, end) of a session to the first stage, in chunks of
// at most chunk_tokens; the last frame asks the last stage to sample the next token.
std::vector<v1::ActivationFrame> HistoryFrames(uint64_t session_id, uint64_t plan_epoch,
                                               absl::Span<const TokenId> history, int64_t from,
                                               int64_t chunk_tokens,
                                               const SamplingParams& sampling);

// The frame that frees a session on every stage.
v1::ActivationFrame EndSessionFrame(uint64_t session_id, uint64_t plan_epoch);

}  // namespace tandem
