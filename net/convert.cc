#include "net/convert.h"

namespace tandem {

SamplingParams SamplingFromProto(const v1::SamplingParams& p) {
  SamplingParams s;
  s.temperature = p.temperature();
  s.top_k = p.top_k();
  s.top_p = p.top_p();
  s.min_p = p.min_p();
  s.repeat_penalty = p.repeat_penalty();
  s.repeat_last_n = p.repeat_last_n();
  s.seed = p.seed();
  s.presence_penalty = p.presence_penalty();
  s.frequency_penalty = p.frequency_penalty();
  s.logprobs = p.logprobs();
  s.top_logprobs = p.top_logprobs();
  return s;
}

v1::SamplingParams SamplingToProto(const SamplingParams& s) {
  v1::SamplingParams p;
  p.set_temperature(s.temperature);
  p.set_top_k(s.top_k);
  p.set_top_p(s.top_p);
  p.set_min_p(s.min_p);
  p.set_repeat_penalty(s.repeat_penalty);
  p.set_repeat_last_n(s.repeat_last_n);
  p.set_seed(s.seed);
  p.set_presence_penalty(s.presence_penalty);
  p.set_frequency_penalty(s.frequency_penalty);
  p.set_logprobs(s.logprobs);
  p.set_top_logprobs(s.top_logprobs);
  return p;
}

}  // namespace tandem
