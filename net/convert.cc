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
  return p;
}

}  // namespace tandem
