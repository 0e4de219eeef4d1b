// `tandem info`: hyper-parameters, metadata and the tensor table of a GGUF file.
#include <cstdio>
#include <string>

#include "absl/strings/str_format.h"
#include "cli/commands.h"
#include "cli/model_loading.h"
#include "model/gguf.h"
#include "model/hparams.h"

namespace tandem::cli {
namespace {

int RunInfo(const std::string& path) {
  auto file = GgufFile::Open(path);
  if (!file.ok()) return ReportError(file.status());
  const GgufFile& f = **file;
  std::printf("file: %s\nGGUF version: %u, alignment: %llu, %zu metadata entries, %zu tensors\n",
              path.c_str(), f.version(), static_cast<unsigned long long>(f.alignment()),
              f.metadata().size(), f.tensors().size());
  auto h = ReadHparams(f);
  if (h.ok()) {
    std::printf(
        "\nhyper-parameters:\n  architecture %s\n  n_vocab %lld\n  n_ctx_train %lld\n  n_embd "
        "%lld\n"
        "  n_layer %lld\n  n_head %lld\n  n_head_kv %lld\n  head_dim %lld\n  n_rot %lld\n  n_ff "
        "%lld\n"
        "  rms_eps %g\n  rope_freq_base %g\n  rope_freq_scale %g\n",
        h->architecture.c_str(), (long long)h->n_vocab, (long long)h->n_ctx_train,
        (long long)h->n_embd, (long long)h->n_layer, (long long)h->n_head, (long long)h->n_head_kv,
        (long long)h->head_dim, (long long)h->n_rot, (long long)h->n_ff, h->rms_eps,
        h->rope_freq_base, h->rope_freq_scale);
    if (h->n_swa) std::printf("  sliding_window %lld\n", static_cast<long long>(*h->n_swa));
    if (h->attn_softcap) std::printf("  attn_logit_softcapping %g\n", *h->attn_softcap);
    if (h->final_softcap) std::printf("  final_logit_softcapping %g\n", *h->final_softcap);
  } else {
    std::printf("\nhyper-parameters: not runnable here: %s\n",
                std::string(h.status().message()).c_str());
  }
  std::printf("\nmetadata:\n");
  for (const auto& [key, value] : f.metadata()) {
    std::printf("  %-45s %s\n", key.c_str(), value.DebugString().c_str());
  }
  std::printf("\ntensors:\n  %-32s %-6s %-22s %12s %12s\n", "name", "type", "shape", "bytes",
              "offset");
  uint64_t total = 0;
  for (const auto& t : f.tensors()) {
    std::printf("  %-32s %-6s %-22s %12llu %12llu\n", t.name.c_str(),
                std::string(GgmlTypeName(t.type)).c_str(), t.ShapeString().c_str(),
                static_cast<unsigned long long>(t.size_bytes),
                static_cast<unsigned long long>(t.offset));
    total += t.size_bytes;
  }
  std::printf("  total tensor bytes: %llu (%.2f MiB)\n", static_cast<unsigned long long>(total),
              total / 1048576.0);
  return 0;
}

}  // namespace

void RegisterInfoCommand(CLI::App& app, RunState& state) {
  auto path = std::make_shared<std::string>();
  CLI::App* cmd = app.add_subcommand("info", "Print a GGUF file's hyper-parameters and tensors");
  cmd->add_option("-m,--model", *path, "GGUF model file")->required();
  cmd->callback([path, &state] { state.exit_code = RunInfo(*path); });
}

}  // namespace tandem::cli
