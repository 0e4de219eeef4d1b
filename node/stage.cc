#include "node/stage.h"

#include <cstring>
#include <new>

#include "absl/strings/str_cat.h"
#include "base/generation.h"
#include "base/status_macros.h"
#include "net/convert.h"
#include "node/sampler.h"

namespace tandem {

absl::StatusOr<std::unique_ptr<Stage>> Stage::Create(std::shared_ptr<const GgufFile> file,
                                                     const StageConfig& config, int threads) {
  // A configuration comes off the wire: bound it before anything is sized from it.
  TANDEM_RETURN_IF_ERROR(ValidateContextLength(config.n_ctx));
  if (config.max_sessions <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_sessions ", config.max_sessions, " must be positive"));
  }
  TANDEM_ASSIGN_OR_RETURN(auto shard, ModelShard::Load(std::move(file), config.range,
                                                       {.on_layer = config.on_layer_loaded}));
  // Every session's KV cache has this size: it must be computable before any is made.
  TANDEM_RETURN_IF_ERROR(
      KvCache::BytesFor(config.range.size(), config.n_ctx, shard->hparams().n_embd_kv()).status());
  try {
    return std::unique_ptr<Stage>(new Stage(std::move(shard), config, threads));
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError("out of memory while creating the stage");
  }
}

Stage::Stage(std::unique_ptr<ModelShard> shard, const StageConfig& config, int threads)
    : config_(config), shard_(std::move(shard)), pool_(threads), forward_(*shard_, pool_) {}

absl::Status Stage::Admit(const v1::ActivationFrame& f) {
  const Hparams& h = shard_->hparams();
  const std::string who = absl::StrCat("session ", f.session_id(), ": ");
  if (f.protocol_version() != kProtocolVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        who, "protocol version ", f.protocol_version(), ", this node speaks ", kProtocolVersion));
  }
  if (f.plan_epoch() != config_.plan_epoch) {
    return absl::FailedPreconditionError(absl::StrCat(
        who, "stale plan epoch ", f.plan_epoch(), ", the node serves epoch ", config_.plan_epoch));
  }
  if (f.end_session()) {
    sessions_.erase(f.session_id());
    return absl::OkStatus();
  }
  if (f.ByteSizeLong() > kMaxFrameBytes + kMaxFrameOverheadBytes) {
    return absl::ResourceExhaustedError(absl::StrCat(who, "frame of ", f.ByteSizeLong(),
                                                     " bytes exceeds the limit of ",
                                                     kMaxFrameBytes + kMaxFrameOverheadBytes));
  }
  if (f.n_tokens() <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(who, "frame has ", f.n_tokens(), " tokens"));
  }
  const int64_t n = f.n_tokens();
  // The frame's activations as this stage computes them, (n, n_embd) f32, are bounded like
  // the wire's: a first stage is sent ids, not activations, so the bytes alone do not tell.
  if (n > kMaxFrameTokens ||
      n * h.n_embd * static_cast<int64_t>(sizeof(float)) > static_cast<int64_t>(kMaxFrameBytes)) {
    return absl::ResourceExhaustedError(
        absl::StrCat(who, "frame of ", n, " tokens exceeds the limit of ",
                     PrefillChunkTokens(h.n_embd), " tokens per frame for this model"));
  }
  if (f.recent_tokens_size() > kMaxRepeatLastN) {
    return absl::InvalidArgumentError(absl::StrCat(who, "frame has ", f.recent_tokens_size(),
                                                   " recent tokens, more than the limit of ",
                                                   kMaxRepeatLastN));
  }
  if (is_first()) {
    if (f.tokens_size() != n || !f.activations().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, "the first stage takes ", n, " token ids and no activations; the frame has ",
          f.tokens_size(), " ids and ", f.activations().size(), " activation bytes"));
    }
    for (int32_t t : f.tokens()) {
      if (t < 0 || t >= h.n_vocab) {
        return absl::InvalidArgumentError(
            absl::StrCat(who, "token id ", t, " is outside the vocabulary of ", h.n_vocab));
      }
    }
  } else {
    const uint64_t want = static_cast<uint64_t>(n) * h.n_embd * WireDtypeSize(f.dtype());
    if (f.tokens_size() != 0 || f.activations().size() != want ||
        (f.dtype() != v1::WIRE_DTYPE_F32 && f.dtype() != v1::WIRE_DTYPE_F16)) {
      return absl::InvalidArgumentError(
          absl::StrCat(who, "activation shape mismatch: ", n, " tokens x ", h.n_embd, " x ",
                       WireDtypeSize(f.dtype()), " bytes = ", want, " bytes expected, got ",
                       f.activations().size(), " bytes and ", f.tokens_size(), " token ids"));
    }
  }
  if (f.sample() && is_last()) {
    const SamplingParams p = SamplingFromProto(f.sampling());
    absl::Status s = ValidateSamplingParams(p);
    if (!s.ok()) return absl::InvalidArgumentError(absl::StrCat(who, s.message()));
  }
  // position + n written so that a huge position cannot overflow.
  if (f.position() < 0 || f.position() > config_.n_ctx - n) {
    return absl::OutOfRangeError(absl::StrCat(who, n, " tokens at position ", f.position(),
                                              " exceed the context of ", config_.n_ctx));
  }
  auto it = sessions_.find(f.session_id());
  if (f.position() == 0) {
    // A new session, or a replay from the start: (re)start it.
    if (it == sessions_.end()) {
      if (static_cast<int>(sessions_.size()) >= config_.max_sessions) {
        return absl::ResourceExhaustedError(absl::StrCat(who, "the stage already holds ",
                                                         sessions_.size(), " sessions (limit ",
                                                         config_.max_sessions, ")"));
      }
      absl::StatusOr<std::unique_ptr<KvCache>> cache = forward_.NewCache(config_.n_ctx);
      if (!cache.ok())
        return absl::ResourceExhaustedError(absl::StrCat(who, cache.status().message()));
      it = sessions_.emplace(f.session_id(), Session{std::move(*cache), 0, {}}).first;
    }
    it->second.next_position = n;
    it->second.last_frame = std::chrono::steady_clock::now();
    return absl::OkStatus();
  }
  if (it == sessions_.end()) {
    return absl::NotFoundError(absl::StrCat(who,
                                            "unknown session (a session starts at position 0, "
                                            "this frame is at ",
                                            f.position(), ")"));
  }
  if (f.position() != it->second.next_position) {
    return absl::OutOfRangeError(absl::StrCat(who, "position gap: expected position ",
                                              it->second.next_position, ", got ", f.position()));
  }
  it->second.next_position += n;
  it->second.last_frame = std::chrono::steady_clock::now();
  return absl::OkStatus();
}

size_t Stage::ExpireIdle(std::chrono::steady_clock::time_point now) {
  size_t n = 0;
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    if (now - it->second.last_frame > config_.session_idle_timeout) {
      sessions_.erase(it++);
      ++n;
    } else {
      ++it;
    }
  }
  return n;
}

size_t Stage::ActiveSessions(std::chrono::steady_clock::time_point now,
                             std::chrono::steady_clock::duration horizon) const {
  size_t n = 0;
  for (const auto& [id, s] : sessions_) n += now - s.last_frame < horizon;
  return n;
}

std::vector<StageOutput> Stage::RunBatch(const std::vector<const v1::ActivationFrame*>& frames) {
  const Hparams& h = shard_->hparams();
  int64_t total = 0;
  for (const auto* f : frames) total += f->n_tokens();
  x_.resize(total * h.n_embd);
  std::vector<SequenceSlice> slices;
  int64_t row = 0;
  for (const auto* f : frames) {
    float* x = x_.data() + row * h.n_embd;
    if (is_first()) {
      std::vector<TokenId> tokens(f->tokens().begin(), f->tokens().end());
      forward_.Embed(tokens, x);
    } else {
      DecodeActivations(f->activations(), f->dtype(), f->n_tokens() * h.n_embd, x);
    }
    slices.push_back({sessions_.at(f->session_id()).cache.get(), f->position(), f->n_tokens()});
    row += f->n_tokens();
  }
  forward_.RunLayers(slices, x_.data());

  std::vector<StageOutput> out(frames.size());
  row = 0;
  for (size_t i = 0; i < frames.size(); ++i) {
    const auto& f = *frames[i];
    const float* x = x_.data() + row * h.n_embd;
    row += f.n_tokens();
    StageOutput& o = out[i];
    if (!is_last()) {
      o.frame.set_protocol_version(kProtocolVersion);
      o.frame.set_session_id(f.session_id());
      o.frame.set_plan_epoch(f.plan_epoch());
      o.frame.set_position(f.position());
      o.frame.set_n_tokens(f.n_tokens());
      o.frame.set_dtype(config_.wire_dtype);
      o.frame.set_activations(EncodeActivations(x, f.n_tokens() * h.n_embd, config_.wire_dtype));
      o.frame.set_sample(f.sample());
      *o.frame.mutable_sampling() = f.sampling();
      *o.frame.mutable_recent_tokens() = f.recent_tokens();
      continue;
    }
    if (!f.sample()) continue;
    // Only the last position of the frame is sampled.
    logits_.resize(h.n_vocab);
    forward_.Logits(x + (f.n_tokens() - 1) * h.n_embd, 1, logits_.data());
    const SamplingParams p = SamplingFromProto(f.sampling());
    std::vector<int32_t> recent(f.recent_tokens().begin(), f.recent_tokens().end());
    o.has_token = true;
    o.token_position = f.position() + f.n_tokens();
    o.token = SampleToken(logits_, p, recent, o.token_position);
    if (p.logprobs) {
      std::vector<float> penalized = logits_;
      ApplyPenalties(penalized, p, recent);
      SampledLogprobs lp = Logprobs(penalized, o.token, p.top_logprobs);
      o.logprob = lp.logprob;
      o.top_logprobs = std::move(lp.top);
    }
  }
  return out;
}

}  // namespace tandem
