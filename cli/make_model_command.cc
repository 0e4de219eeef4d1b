// `tandem make-model`: a GGUF with random weights of a chosen architecture (llama, qwen2,
// phi3, gemma2), shape and type, for benchmarks and multi-node tests without downloading
// a model. The vocabulary and tokenizer metadata come from an existing GGUF.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "cli/commands.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "node/kernels/quants.h"
#include "node/kernels/thread_pool.h"

namespace tandem::cli {
namespace {

struct MakeModelOptions {
  std::string arch = "llama";
  int64_t sliding_window = -1;  // -1: the architecture's default (phi3 none, gemma2 4096)
  int64_t n_embd = 2048, n_layer = 16, n_head = 32, n_head_kv = 8, n_ff = 8192, n_ctx = 4096;
  std::string type = "q4_0";
  std::string vocab_from;
  std::string output;
  uint64_t seed = 1;
  int threads = 2;
};

// The tensor type for each matrix under a file type name (llama.cpp's mixes, approximately:
// q4_k_m / q5_k_m keep attn_v, ffn_down and output at Q6_K).
struct TypeRecipe {
  GgmlType base;
  bool k_mix = false;  // Q6_K for attn_v, ffn_down, output
  int llama_ftype;     // general.file_type as llama.cpp numbers it
};

absl::StatusOr<TypeRecipe> RecipeFor(const std::string& name) {
  if (name == "q4_k_m") return TypeRecipe{GgmlType::kQ4_K, true, 15};
  if (name == "q5_k_m") return TypeRecipe{GgmlType::kQ5_K, true, 17};
  const std::optional<GgmlType> t = GgmlTypeFromName(name);
  if (!t || !IsSupportedWeightType(*t)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown --type '", name,
        "' (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, q4_k, q5_k, q6_k, q4_k_m, q5_k_m)"));
  }
  int ftype = 0;
  switch (*t) {
    case GgmlType::kF16:
      ftype = 1;
      break;
    case GgmlType::kQ4_0:
      ftype = 2;
      break;
    case GgmlType::kQ4_1:
      ftype = 3;
      break;
    case GgmlType::kQ8_0:
      ftype = 7;
      break;
    case GgmlType::kQ5_0:
      ftype = 8;
      break;
    case GgmlType::kQ5_1:
      ftype = 9;
      break;
    case GgmlType::kQ4_K:
      ftype = 14;
      break;  // Q4_K_S
    case GgmlType::kQ5_K:
      ftype = 16;
      break;  // Q5_K_S
    case GgmlType::kQ6_K:
      ftype = 18;
      break;
    case GgmlType::kBF16:
      ftype = 32;
      break;
    default:
      break;
  }
  return TypeRecipe{*t, false, ftype};
}

// splitmix64: a counter-based generator, so every row can be filled independently.
uint64_t Mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// (rows, cols) uniform weights with standard deviation `stddev`, quantized to `type`.
std::vector<uint8_t> RandomMatrix(GgmlType type, int64_t rows, int64_t cols, float stddev,
                                  uint64_t seed, ThreadPool& pool) {
  const int64_t row_bytes = RowBytes(type, cols);
  std::vector<uint8_t> out(static_cast<size_t>(row_bytes * rows));
  const float half_width = stddev * std::sqrt(3.0f);
  pool.ParallelFor(rows, 16, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(cols);
    for (int64_t r = r0; r < r1; ++r) {
      uint64_t state = Mix(seed ^ Mix(static_cast<uint64_t>(r)));
      for (int64_t c = 0; c < cols; ++c) {
        state = Mix(state);
        const float u = static_cast<float>(state >> 40) * (1.0f / 16777216.0f);  // [0, 1)
        row[c] = (2 * u - 1) * half_width;
      }
      QuantizeRowReference(type, row.data(), cols, out.data() + r * row_bytes);
    }
  });
  return out;
}

std::vector<uint8_t> OnesF32(int64_t n) {
  std::vector<uint8_t> out(static_cast<size_t>(4 * n));
  const float one = 1.0f;
  for (int64_t i = 0; i < n; ++i) std::memcpy(out.data() + 4 * i, &one, 4);
  return out;
}

absl::Status MakeModel(const MakeModelOptions& o) {
  TANDEM_ASSIGN_OR_RETURN(const TypeRecipe recipe, RecipeFor(o.type));
  if (o.n_embd <= 0 || o.n_layer <= 0 || o.n_head <= 0 || o.n_head_kv <= 0 || o.n_ff <= 0 ||
      o.n_ctx <= 0) {
    return absl::InvalidArgumentError("every size must be positive");
  }
  if (o.n_embd % o.n_head != 0 || o.n_head % o.n_head_kv != 0) {
    return absl::InvalidArgumentError("n_head must divide n_embd and n_head_kv must divide n_head");
  }
  TANDEM_ASSIGN_OR_RETURN(std::unique_ptr<GgufFile> vocab, GgufFile::Open(o.vocab_from));
  const GgufValue* tokens = vocab->Find("tokenizer.ggml.tokens");
  if (tokens == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat(o.vocab_from, ": no tokenizer.ggml.tokens to take the vocabulary from"));
  }
  const int64_t n_vocab = static_cast<int64_t>(tokens->array_size());
  const int64_t head_dim = o.n_embd / o.n_head, n_kv = o.n_head_kv * head_dim;

  // A type whose block does not fit a row length falls back (as llama.cpp does) to Q8_0,
  // then F16.
  auto fit = [](GgmlType t, int64_t row_length) {
    if (RowBytes(t, row_length) > 0) return t;
    if (RowBytes(GgmlType::kQ8_0, row_length) > 0) return GgmlType::kQ8_0;
    return GgmlType::kF16;
  };
  const GgmlType mix_type = recipe.k_mix ? GgmlType::kQ6_K : recipe.base;

  // What each architecture writes beyond llama's tensors and keys (node/arch/ reads them).
  const bool qwen2 = o.arch == "qwen2", phi3 = o.arch == "phi3", gemma2 = o.arch == "gemma2";
  if (o.arch != "llama" && !qwen2 && !phi3 && !gemma2) {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown --arch '", o.arch, "' (llama, qwen2, phi3, gemma2)"));
  }
  GgufWriter writer;
  const std::string a = o.arch + ".";
  using VT = GgufValueType;
  writer.AddMetadata("general.architecture", GgufValue::String(o.arch));
  writer.AddMetadata("general.name",
                     GgufValue::String(absl::StrCat("tandem-random-", o.arch, "-", o.type)));
  writer.AddMetadata("general.file_type", GgufValue::Int(VT::kUint32, recipe.llama_ftype));
  writer.AddMetadata(a + "context_length", GgufValue::Int(VT::kUint32, o.n_ctx));
  writer.AddMetadata(a + "embedding_length", GgufValue::Int(VT::kUint32, o.n_embd));
  writer.AddMetadata(a + "block_count", GgufValue::Int(VT::kUint32, o.n_layer));
  writer.AddMetadata(a + "feed_forward_length", GgufValue::Int(VT::kUint32, o.n_ff));
  writer.AddMetadata(a + "attention.head_count", GgufValue::Int(VT::kUint32, o.n_head));
  writer.AddMetadata(a + "attention.head_count_kv", GgufValue::Int(VT::kUint32, o.n_head_kv));
  writer.AddMetadata(a + "rope.dimension_count", GgufValue::Int(VT::kUint32, head_dim));
  writer.AddMetadata(a + "rope.freq_base", GgufValue::Float32(10000.0f));
  writer.AddMetadata(a + "attention.layer_norm_rms_epsilon", GgufValue::Float32(1e-5f));
  writer.AddMetadata(a + "vocab_size", GgufValue::Int(VT::kUint32, n_vocab));
  if (phi3 || gemma2) {
    const int64_t window = o.sliding_window >= 0 ? o.sliding_window : (gemma2 ? 4096 : 0);
    writer.AddMetadata(a + "attention.sliding_window", GgufValue::Int(VT::kUint32, window));
  }
  if (gemma2) {
    writer.AddMetadata(a + "attention.key_length", GgufValue::Int(VT::kUint32, head_dim));
    writer.AddMetadata(a + "attention.value_length", GgufValue::Int(VT::kUint32, head_dim));
    writer.AddMetadata(a + "attn_logit_softcapping", GgufValue::Float32(50.0f));
    writer.AddMetadata(a + "final_logit_softcapping", GgufValue::Float32(30.0f));
  }
  for (const auto& [key, value] : vocab->metadata()) {
    if (key.rfind("tokenizer.", 0) == 0) writer.AddMetadata(key, value);
  }

  ThreadPool pool(o.threads);
  uint64_t tensor_seed = Mix(o.seed);
  // Weights ~ 0.02 std like a fresh Llama; the output projection smaller so logits stay sane.
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols, GgmlType type,
                    float stddev) {
    type = fit(type, cols);
    tensor_seed = Mix(tensor_seed);
    writer.AddTensor(name, {cols, rows}, type,
                     RandomMatrix(type, rows, cols, stddev, tensor_seed, pool));
  };
  auto bias = [&](const std::string& name, int64_t n, float stddev) {
    tensor_seed = Mix(tensor_seed);
    writer.AddTensor(name, {n}, GgmlType::kF32,
                     RandomMatrix(GgmlType::kF32, 1, n, stddev, tensor_seed, pool));
  };
  const int64_t n_q = o.n_head * head_dim;
  matrix("token_embd.weight", n_vocab, o.n_embd, recipe.base, 0.02f);
  for (int64_t l = 0; l < o.n_layer; ++l) {
    const std::string p = absl::StrCat("blk.", l, ".");
    writer.AddTensor(p + "attn_norm.weight", {o.n_embd}, GgmlType::kF32, OnesF32(o.n_embd));
    if (phi3) {
      matrix(p + "attn_qkv.weight", n_q + 2 * n_kv, o.n_embd, recipe.base, 0.02f);
    } else {
      matrix(p + "attn_q.weight", n_q, o.n_embd, recipe.base, 0.02f);
      matrix(p + "attn_k.weight", n_kv, o.n_embd, recipe.base, 0.02f);
      matrix(p + "attn_v.weight", n_kv, o.n_embd, mix_type, 0.02f);
    }
    if (qwen2) {
      bias(p + "attn_q.bias", n_q, 0.02f);
      bias(p + "attn_k.bias", n_kv, 0.02f);
      bias(p + "attn_v.bias", n_kv, 0.02f);
    }
    matrix(p + "attn_output.weight", o.n_embd, n_q, recipe.base, 0.02f);
    if (gemma2) {
      writer.AddTensor(p + "post_attention_norm.weight", {o.n_embd}, GgmlType::kF32,
                       OnesF32(o.n_embd));
    }
    writer.AddTensor(p + "ffn_norm.weight", {o.n_embd}, GgmlType::kF32, OnesF32(o.n_embd));
    if (phi3) {
      matrix(p + "ffn_up.weight", 2 * o.n_ff, o.n_embd, recipe.base, 0.02f);  // gate, then up
    } else {
      matrix(p + "ffn_gate.weight", o.n_ff, o.n_embd, recipe.base, 0.02f);
      matrix(p + "ffn_up.weight", o.n_ff, o.n_embd, recipe.base, 0.02f);
    }
    matrix(p + "ffn_down.weight", o.n_embd, o.n_ff, mix_type, 0.02f);
    if (gemma2) {
      writer.AddTensor(p + "post_ffw_norm.weight", {o.n_embd}, GgmlType::kF32, OnesF32(o.n_embd));
    }
    std::fprintf(stderr, "\rlayer %lld/%lld", static_cast<long long>(l + 1),
                 static_cast<long long>(o.n_layer));
  }
  std::fprintf(stderr, "\n");
  writer.AddTensor("output_norm.weight", {o.n_embd}, GgmlType::kF32, OnesF32(o.n_embd));
  // Gemma 2 always ties the classifier to the embeddings.
  if (!gemma2) matrix("output.weight", n_vocab, o.n_embd, mix_type, 0.02f);
  return writer.WriteFile(o.output);
}

}  // namespace

void RegisterMakeModelCommand(CLI::App& app, RunState& state) {
  auto options = std::make_shared<MakeModelOptions>();
  CLI::App* cmd = app.add_subcommand(
      "make-model", "Write a GGUF with random weights (benchmarks, multi-node tests)");
  cmd->add_option("--arch", options->arch, "architecture: llama qwen2 phi3 gemma2")
      ->capture_default_str();
  cmd->add_option("--sliding-window", options->sliding_window,
                  "phi3/gemma2 attention.sliding_window (default: phi3 none, gemma2 4096)");
  cmd->add_option("--n-embd", options->n_embd, "embedding width")->capture_default_str();
  cmd->add_option("--n-layer", options->n_layer, "transformer layers")->capture_default_str();
  cmd->add_option("--n-head", options->n_head, "attention heads")->capture_default_str();
  cmd->add_option("--n-head-kv", options->n_head_kv, "key/value heads")->capture_default_str();
  cmd->add_option("--n-ff", options->n_ff, "feed-forward width")->capture_default_str();
  cmd->add_option("--n-ctx", options->n_ctx, "context length")->capture_default_str();
  cmd->add_option("--type", options->type,
                  "weight type: f32 f16 bf16 q8_0 q4_0 q4_1 q5_0 q5_1 q4_k q5_k q6_k q4_k_m q5_k_m")
      ->capture_default_str();
  cmd->add_option("--vocab-from", options->vocab_from, "GGUF to copy vocabulary and tokenizer from")
      ->required();
  cmd->add_option("-o,--output", options->output, "output GGUF path")->required();
  cmd->add_option("--seed", options->seed, "random seed")->capture_default_str();
  cmd->add_option("-t,--threads", options->threads, "threads")->capture_default_str();
  cmd->callback([options, &state] {
    const absl::Status s = MakeModel(*options);
    if (!s.ok()) {
      std::fprintf(stderr, "tandem make-model: %s\n", std::string(s.message()).c_str());
      state.exit_code = 1;
      return;
    }
    std::fprintf(stderr, "wrote %s\n", options->output.c_str());
  });
}

}  // namespace tandem::cli
