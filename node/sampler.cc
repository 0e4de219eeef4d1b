#include "node/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "node/counter_rng.h"

namespace tandem {

int32_t Argmax(absl::Span<const float> logits) {
  int32_t best = 0;
  for (size_t i = 1; i < logits.size(); ++i) {
    if (logits[i] > logits[best]) best = static_cast<int32_t>(i);
  }
  return best;
}

void ApplyPenalties(std::vector<float>& l, const SamplingParams& p,
                    absl::Span<const int32_t> recent) {
  if (!UsesRecentTokens(p) || p.repeat_last_n <= 0) return;
  const size_t n = std::min<size_t>(recent.size(), static_cast<size_t>(p.repeat_last_n));
  absl::flat_hash_map<int32_t, int> counts;
  for (int32_t id : recent.subspan(recent.size() - n)) {
    if (id >= 0 && static_cast<size_t>(id) < l.size()) ++counts[id];
  }
  for (const auto& [id, count] : counts) {
    if (p.repeat_penalty != 1.0f) {
      l[id] = l[id] > 0 ? l[id] / p.repeat_penalty : l[id] * p.repeat_penalty;
    }
    l[id] -= static_cast<float>(count) * p.frequency_penalty + p.presence_penalty;
  }
}

SampledLogprobs Logprobs(absl::Span<const float> logits, int32_t token, int n_top) {
  SampledLogprobs out;
  if (logits.empty()) return out;
  // log softmax: x - max - log(sum exp(x - max)), in double for a vocabulary-sized sum.
  const float max = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float x : logits) sum += std::exp(static_cast<double>(x) - max);
  const double log_sum = std::log(sum);
  auto logprob = [&](int32_t id) {
    return static_cast<float>(static_cast<double>(logits[id]) - max - log_sum);
  };
  if (token >= 0 && static_cast<size_t>(token) < logits.size()) out.logprob = logprob(token);
  const size_t k = std::min<size_t>(static_cast<size_t>(std::max(0, n_top)), logits.size());
  std::vector<int32_t> ids(logits.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (size_t i = 0; i < k; ++i) out.top.push_back({ids[i], logprob(ids[i])});
  return out;
}

int32_t SampleToken(absl::Span<const float> logits, const SamplingParams& p,
                    absl::Span<const int32_t> recent, int64_t position) {
  std::vector<float> l(logits.begin(), logits.end());
  ApplyPenalties(l, p, recent);
  if (p.temperature <= 0) return Argmax(l);

  // Candidates sorted by logit, descending (ties: lower id first).
  std::vector<int32_t> ids(l.size());
  std::iota(ids.begin(), ids.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); };
  size_t keep = ids.size();
  if (p.top_k > 0 && static_cast<size_t>(p.top_k) < keep) {
    keep = static_cast<size_t>(p.top_k);
    std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), by_logit);
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  ids.resize(keep);

  auto softmax = [&](float temperature) {
    std::vector<double> probs(ids.size());
    double max = l[ids[0]], sum = 0;
    for (size_t i = 0; i < ids.size(); ++i) {
      probs[i] = std::exp((l[ids[i]] - max) / temperature);
      sum += probs[i];
    }
    for (double& v : probs) v /= sum;
    return probs;
  };

  // top-p: the smallest prefix whose probability reaches p (at least one token).
  if (p.top_p < 1.0f) {
    std::vector<double> probs = softmax(1.0f);
    double cum = 0;
    size_t n = ids.size();
    for (size_t i = 0; i < ids.size(); ++i) {
      cum += probs[i];
      if (cum >= p.top_p) {
        n = i + 1;
        break;
      }
    }
    ids.resize(n);
  }
  // min-p: drop tokens whose probability is below min_p times the best one's.
  if (p.min_p > 0.0f) {
    const float threshold = l[ids[0]] + std::log(p.min_p);
    size_t n = 1;
    while (n < ids.size() && l[ids[n]] >= threshold) ++n;
    ids.resize(n);
  }
  std::vector<double> probs = softmax(p.temperature);
  const double u = CounterUniform(p.seed, static_cast<uint64_t>(position));
  double cum = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    cum += probs[i];
    if (u < cum) return ids[i];
  }
  return ids.back();
}

}  // namespace tandem
