// Fuzz target: frames as a stage receives them off the wire. Two stages of a small model
// (the whole model: embedding and head; and a middle range that takes activations)
// admit frames built from the input, and run the admitted ones. Either the input is one
// protobuf-encoded frame, or a sequence of frames whose fields the input steers near the
// values a stage accepts (so that admission gets past its first checks). Nothing may
// crash; every bad frame is an error status. Every frame goes through admission; the
// kernels run the admitted ones up to a budget of tokens per stage and input. The model is
// stories260K cut to its first two layers (same vocabulary, widths and weights), built once
// per process: a forward pass, not admission, is what an input's time goes to.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "net/frames.h"
#include "node/stage.h"

namespace {

constexpr uint64_t kEpoch = 7;

constexpr int kLayers = 2;

struct Stages {
  std::unique_ptr<tandem::Stage> whole;   // layers [0, 2): first and last
  std::unique_ptr<tandem::Stage> middle;  // layers [1, 2): activations in and out
};

// stories260K's first kLayers layers as a model of their own.
std::shared_ptr<const tandem::GgufFile> FirstLayers(const tandem::GgufFile& full) {
  tandem::GgufWriter writer;
  auto arch = full.GetString("general.architecture");
  if (!arch.ok()) std::abort();
  const std::string block_count = *arch + ".block_count";
  for (const auto& [key, value] : full.metadata()) {
    writer.AddMetadata(key, key == block_count
                                ? tandem::GgufValue::Int(tandem::GgufValueType::kUint32, kLayers)
                                : value);
  }
  for (const tandem::GgufTensor& t : full.tensors()) {
    int layer = 0;
    if (std::sscanf(t.name.c_str(), "blk.%d.", &layer) == 1 && layer >= kLayers) continue;
    writer.AddTensor(t.name, t.dims, t.type, std::vector<uint8_t>(t.data, t.data + t.size_bytes));
  }
  auto file = tandem::GgufFile::FromBytes("stories260K-first-layers", writer.Serialize());
  if (!file.ok()) std::abort();
  return std::move(*file);
}

Stages MakeStages() {
  const char* env = std::getenv("TANDEM_SHARED_DIR");
  const std::string shared = env ? env : TANDEM_SHARED_DIR;
  auto file = tandem::GgufFile::Open(shared + "/models/stories260K-f32.gguf");
  if (!file.ok()) std::abort();
  std::shared_ptr<const tandem::GgufFile> model = FirstLayers(**file);
  Stages s;
  tandem::StageConfig config;
  config.plan_epoch = kEpoch;
  config.n_ctx = 64;
  config.max_sessions = 4;
  config.range = {0, kLayers};
  auto whole = tandem::Stage::Create(model, config, /*threads=*/1);
  config.range = {1, kLayers};
  config.wire_dtype = tandem::v1::WIRE_DTYPE_F16;
  auto middle = tandem::Stage::Create(model, config, /*threads=*/1);
  if (!whole.ok() || !middle.ok()) std::abort();
  s.whole = std::move(*whole);
  s.middle = std::move(*middle);
  return s;
}

// Takes little-endian values off the front of the input; zeros once it runs out.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return size_ == 0; }
  template <typename T>
  T Take() {
    T v{};
    const size_t n = std::min(sizeof(T), size_);
    std::memcpy(&v, data_, n);
    data_ += n;
    size_ -= n;
    return v;
  }
  std::string TakeBytes(size_t n) {
    n = std::min(n, size_);
    std::string s(reinterpret_cast<const char*>(data_), n);
    data_ += n;
    size_ -= n;
    return s;
  }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_;
  size_t size_;
};

tandem::v1::ActivationFrame SteeredFrame(Input& in, const tandem::Stage& stage,
                                         absl::flat_hash_map<uint64_t, int64_t>& next) {
  const uint8_t op = in.Take<uint8_t>();
  tandem::v1::ActivationFrame f;
  f.set_protocol_version(op & 0x01 ? in.Take<uint32_t>() : tandem::kProtocolVersion);
  f.set_plan_epoch(op & 0x02 ? in.Take<uint64_t>() : kEpoch);
  const uint64_t session = op & 0x04 ? in.Take<uint64_t>() : 1 + in.Take<uint8_t>() % 3;
  f.set_session_id(session);
  if (op & 0x08) {
    f.set_end_session(true);
    next.erase(session);
    return f;
  }
  f.set_position(op & 0x10 ? in.Take<int64_t>() : next[session]);
  const int32_t n = op & 0x20 ? in.Take<int32_t>() : 1 + in.Take<uint8_t>() % 4;
  f.set_n_tokens(n);
  const int32_t count =
      static_cast<int32_t>(std::clamp<int64_t>(int64_t{n} + in.Take<int8_t>() % 2, 0, 16));
  const int64_t n_embd = stage.shard().hparams().n_embd;
  if (stage.is_first()) {
    for (int32_t i = 0; i < count; ++i) f.add_tokens(in.Take<int16_t>());
  } else {
    const bool f16 = in.Take<uint8_t>() & 1;
    f.set_dtype(f16 ? tandem::v1::WIRE_DTYPE_F16 : tandem::v1::WIRE_DTYPE_F32);
    const size_t want = static_cast<size_t>(count) * n_embd * (f16 ? 2 : 4);
    std::string bytes = in.TakeBytes(want);
    bytes.resize(want, '\0');
    f.set_activations(std::move(bytes));
  }
  if (op & 0x40) {
    f.set_sample(true);
    auto* p = f.mutable_sampling();
    p->set_temperature(in.Take<float>());
    p->set_top_k(in.Take<int8_t>());
    p->set_top_p(in.Take<float>());
    p->set_min_p(in.Take<float>());
    p->set_repeat_penalty(in.Take<float>());
    p->set_repeat_last_n(in.Take<int8_t>());
    p->set_seed(in.Take<uint64_t>());
    for (int i = in.Take<uint8_t>() % 4; i > 0; --i) f.add_recent_tokens(in.Take<int16_t>());
  }
  return f;
}

// Tokens the kernels run per stage and input (a frame of up to 4 tokens, or a few frames
// of one), while admission sees every frame.
constexpr int32_t kRunTokenBudget = 4;

// Admits a frame and runs it at once, as a node runs a batch of one, while `budget` lasts:
// the point is admission, not the kernels' speed.
bool AdmitAndRun(tandem::Stage& stage, const tandem::v1::ActivationFrame& f, int32_t& budget) {
  if (!stage.Admit(f).ok()) return false;
  if (!f.end_session() && f.n_tokens() <= budget) {
    budget -= f.n_tokens();
    (void)stage.RunBatch({&f});
  }
  return true;
}

Stages* TheStages() {
  static Stages* stages = new Stages(MakeStages());
  return stages;
}

}  // namespace

// Loading the model is not timed as an input.
extern "C" int LLVMFuzzerInitialize(int*, char***) {
  (void)TheStages();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Stages* stages = TheStages();
  Input in(data, size);
  const uint8_t mode = in.Take<uint8_t>();
  absl::flat_hash_set<uint64_t> touched = {1, 2, 3};
  for (tandem::Stage* stage : {stages->whole.get(), stages->middle.get()}) {
    int32_t budget = kRunTokenBudget;
    if ((mode & 1) == 0) {
      tandem::v1::ActivationFrame f;
      if ((stage == stages->whole.get() || (mode & 2)) &&
          f.ParseFromArray(in.data(), static_cast<int>(in.size()))) {
        touched.insert(f.session_id());
        (void)AdmitAndRun(*stage, f, budget);
      }
    } else {
      absl::flat_hash_map<uint64_t, int64_t> next;
      for (int i = 0; i < 12 && !in.empty(); ++i) {
        tandem::v1::ActivationFrame f = SteeredFrame(in, *stage, next);
        touched.insert(f.session_id());
        if (AdmitAndRun(*stage, f, budget) && !f.end_session()) {
          next[f.session_id()] = f.position() + f.n_tokens();  // admitted: within n_ctx
        }
      }
    }
    // Each input starts from empty stages.
    for (uint64_t id : touched) {
      if (!stage->Admit(tandem::EndSessionFrame(id, kEpoch)).ok()) std::abort();
    }
    if (stage->n_sessions() != 0) std::abort();
  }
  return 0;
}
