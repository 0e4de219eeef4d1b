// `tandem generate`: text from a prompt, in this process.
#include <cstdio>
#include <random>
#include <string>

#include "cli/commands.h"
#include "cli/generation_output.h"
#include "cli/model_loading.h"
#include "cli/remote_generation.h"
#include "cli/token_options.h"
#include "node/local_engine.h"

namespace tandem::cli {
namespace {

struct GenerateOptions {
  std::string model;
  std::string coordinator;
  TokenOptions token;
  std::string prompt;
  int32_t n_predict = 32;
  SamplingParams sampling;
  int64_t seed = -1;
  int threads = 0;
  int64_t ctx_size = 0;
  bool json = false;
  bool stop_at_eos = false;
};

int RunRemote(const GenerateOptions& o) {
  if (absl::Status s = JoinAsClient(o.coordinator, o.token); !s.ok()) return ReportError(s);
  GenerationOutput out;
  out.seed = o.sampling.seed;
  auto result = RemoteGenerateText(o.coordinator, o.prompt, o.n_predict, o.sampling, o.stop_at_eos,
                                   !o.json, &out);
  if (!result.ok()) return ReportError(ExplainClusterError(o.coordinator, o.token, result));
  if (o.json) {
    PrintGenerationJson(out);
  } else {
    PrintGenerationSummary(out);
  }
  return 0;
}

int RunGenerate(GenerateOptions& o) {
  o.sampling.seed = o.seed >= 0 ? static_cast<uint64_t>(o.seed) : std::random_device{}();
  if (!o.coordinator.empty()) return RunRemote(o);
  if (o.model.empty())
    return ReportError(
        absl::InvalidArgumentError("give a model (-m) or a cluster (--coordinator)"));
  auto model = LoadModel(o.model);
  if (!model.ok()) return ReportError(model.status());
  const int threads =
      o.threads > 0 ? o.threads : static_cast<int>(std::thread::hardware_concurrency());

  auto engine = LocalEngine::Create(model->file, {threads, o.ctx_size});
  if (!engine.ok()) return ReportError(engine.status());

  GenerationRequest request;
  request.prompt_ids =
      model->tokenizer->Encode(o.prompt, /*add_special=*/true, /*parse_special=*/true);
  request.n_predict = o.n_predict;
  request.sampling = o.sampling;
  request.stop_at_eos = o.stop_at_eos;

  const Tokenizer& tok = *model->tokenizer;
  GenerationOutput out;
  out.prompt_ids = request.prompt_ids;
  out.seed = o.sampling.seed;
  auto result = (*engine)->Generate(
      request, [&](TokenId id) { return tok.IsEog(id); },
      [&](TokenId id) {
        std::string piece = tok.TokenToPiece(id, /*render_special=*/false);
        out.text += piece;
        if (!o.json) {
          std::fwrite(piece.data(), 1, piece.size(), stdout);
          std::fflush(stdout);
        }
        return true;
      });
  if (!result.ok()) return ReportError(result.status());
  out.ids = result->ids;
  out.prompt_ms = result->prompt_seconds * 1e3;
  out.decode_ms = result->decode_seconds * 1e3;
  out.n_decode_steps = result->n_decode_steps;
  if (o.json) {
    PrintGenerationJson(out);
  } else {
    PrintGenerationSummary(out);
  }
  return 0;
}

}  // namespace

void RegisterGenerateCommand(CLI::App& app, RunState& state) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text from a prompt");
  cmd->add_option("-m,--model", o->model, "GGUF model file (runs in this process)");
  cmd->add_option("--coordinator", o->coordinator, "A running cluster's coordinator HOST:PORT");
  AddTokenOptions(cmd, &o->token);
  cmd->add_option("-p,--prompt", o->prompt, "Prompt text")->required();
  cmd->add_option("-n,--n-predict", o->n_predict, "Tokens to generate")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--temp", o->sampling.temperature, "Temperature (0: greedy)")
      ->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "Top-k (0: off)")->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "Top-p (1: off)")->capture_default_str();
  cmd->add_option("--min-p", o->sampling.min_p, "Min-p (0: off)")->capture_default_str();
  cmd->add_option("--repeat-penalty", o->sampling.repeat_penalty, "Repetition penalty (1: off)")
      ->capture_default_str();
  cmd->add_option("--repeat-last-n", o->sampling.repeat_last_n, "Tokens the penalty looks back on")
      ->capture_default_str();
  cmd->add_option("--seed", o->seed, "Random seed (default: random)");
  cmd->add_option("-t,--threads", o->threads, "Threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("-c,--ctx-size", o->ctx_size, "Context length (default: the model's)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--json", o->json, "Print one JSON object instead of streaming text");
  cmd->add_flag("--stop-at-eos", o->stop_at_eos, "Stop at an end-of-generation token");
  cmd->callback([o, &state] { state.exit_code = RunGenerate(*o); });
}

}  // namespace tandem::cli
