#include "model/pretokenizer.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/unicode.h"

namespace tandem {
namespace {

// The patterns are llama.cpp's (which adapts them from each model's tokenizer.json), so that
// token ids match it exactly.
constexpr char kGpt2Pattern[] =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S))";
constexpr char kLlama3Pattern[] =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr char kQwen2Pattern[] =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr char kChatGlm4Pattern[] =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr char kPoroPattern[] = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
constexpr char kTekkenPattern[] =
    R"([^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))*((?=[\p{L}])([^A-Z]))+|[^\r\n\p{L}\p{N}]?((?=[\p{L}])([^a-z]))+((?=[\p{L}])([^A-Z]))*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr char kCjkPattern[] = "[一-龥ࠀ-一가-퟿]+";
// DeepSeek LLM's cased-letter class (from its tokenizer.json). Written with escapes because
// several of its codepoints (U+1FD3, U+2126, U+212A, ...) do not survive NFC-normalizing
// editors, and a normalized K (U+212A -> 'K') would silently widen a range.
constexpr char kDeepseekLlmLetters[] =
    "\\s?"
    "[A-Za-z\u00B5\u00C0-\u00D6\u00D8-\u00F6\u00F8-\u01BA\u01BC-\u01BF\u01C4-\u0293\u0295"
    "-\u02AF\u0370-\u0373\u0376\u0377\u037B-\u037D\u037F\u0386\u0388-\u038A\u038C\u038E-"
    "\u03A1\u03A3-\u03F5\u03F7-\u0481\u048A-\u052F\u0531-\u0556\u10A0-\u10C5\u13A0-\u13F5"
    "\u13F8-\u13FD\u1C90-\u1CBA\u1CBD-\u1CBF\u1D00-\u1D2B\u1D6B-\u1D77\u1D79-\u1D9A\u1E00"
    "-\u1F15\u1F18-\u1F1D\u1F20-\u1F45\u1F48-\u1F4D\u1F50-\u1F57\u1F59\u1F5B\u1F5D\u1F5F-"
    "\u1F7D\u1F80-\u1FB4\u1FB6-\u1FBC\u1FBE\u1FC2-\u1FC4\u1FC6-\u1FCC\u1FD0-\u1FD3\u1FD6-"
    "\u1FDB\u1FE0-\u1FEC\u1FF2-\u1FF4\u1FF6-\u1FFC\u2102\u2107\u210A-\u2113\u2115\u2119-"
    "\u211D\u2124\u2126\u2128\u212A-\u212D\u212F-\u2134\u2139\u213C-\u213F\u2145-\u2149"
    "\u214E\u2183\u2184\u2C00-\u2C7B\u2C7E-\u2CE4\u2CEB-\u2CEE\u2CF2\u2CF3\uA640-\uA66D"
    "\uA680-\uA69B\uA722-\uA76F\uA771-\uA787\uA78B-\uA78E\uAB70-\uABBF\uFB00-\uFB06\uFB13"
    "-\uFB17\uFF21-\uFF3A\uFF41-\uFF5A\U00010400-\U0001044F\U000104B0-\U000104D3"
    "\U000104D8-\U000104FB\U00010C80-\U00010CB2\U00010CC0-\U00010CF2\U000118A0-\U000118DF"
    "\U0001E900-\U0001E943]+";

}  // namespace

absl::StatusOr<BpePreset> BpePresetForName(const std::string& name) {
  BpePreset p;
  auto is_any = [&](std::initializer_list<const char*> names) {
    for (const char* n : names) {
      if (name == n) return true;
    }
    return false;
  };
  if (name.empty() || name == "default") {
    p.patterns = {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2Pattern, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  } else if (is_any({"llama3", "llama-v3", "llama-bpe", "falcon3"})) {
    p.patterns = {kLlama3Pattern};
    p.ignore_merges = true;
    p.add_bos = true;
  } else if (is_any({"dbrx", "smaug-bpe"})) {
    p.patterns = {kLlama3Pattern};
  } else if (name == "deepseek-llm") {
    p.patterns = {"[\r\n]",  kDeepseekLlmLetters, R"(\s?[!-/:-~！-／：-～‘-‟　-。]+)",
                  R"(\s+$)", kCjkPattern,         R"(\p{N}+)"};
    p.clean_spaces = false;
  } else if (name == "deepseek-coder") {
    p.patterns = {"[\r\n]", R"(\s?\p{L}+)", R"(\s?\p{P}+)", kCjkPattern, R"(\p{N})"};
    p.clean_spaces = false;
  } else if (name == "falcon") {
    p.patterns = {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2Pattern, "[0-9][0-9][0-9]"};
  } else if (is_any({"starcoder", "refact", "codeshell", "exaone", "minerva-7b"})) {
    p.patterns = {R"(\p{N})", kGpt2Pattern};
  } else if (is_any({"command-r", "smollm"})) {
    p.patterns = {R"(\p{N})", kGpt2Pattern};
    p.clean_spaces = false;
  } else if (is_any({"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v1-en", "jina-v2-es",
                     "jina-v2-de", "jina-v2-code", "roberta-bpe", "mpt", "olmo", "jais"})) {
    p.patterns = {kGpt2Pattern};
  } else if (is_any({"qwen2", "deepseek-r1-qwen", "megrez"})) {
    p.patterns = {kQwen2Pattern};
    p.clean_spaces = false;
  } else if (name == "stablelm2") {
    p.patterns = {kQwen2Pattern};
  } else if (is_any({"poro-chat", "bloom", "gpt3-finnish"})) {
    p.patterns = {kPoroPattern};
    p.clean_spaces = name != "poro-chat";
  } else if (name == "viking") {
    p.patterns = {kPoroPattern, R"(\p{N})"};
    p.clean_spaces = false;
  } else if (name == "chatglm-bpe") {
    p.patterns = {kChatGlm4Pattern};
    p.bos_none = true;
  } else if (name == "tekken") {
    p.patterns = {kTekkenPattern};
    p.clean_spaces = false;
    p.ignore_merges = true;
    p.add_bos = true;
  } else {
    return absl::UnimplementedError(
        absl::StrCat("unknown pre-tokenizer type '", name, "' (tokenizer.ggml.pre)"));
  }
  return p;
}

absl::StatusOr<PreTokenizer> PreTokenizer::Create(const std::vector<std::string>& patterns) {
  PreTokenizer pre;
  for (const std::string& pattern : patterns) {
    TANDEM_ASSIGN_OR_RETURN(SplitRegex re, SplitRegex::Compile(pattern));
    pre.regexes_.push_back(std::move(re));
  }
  return pre;
}

std::vector<std::string> PreTokenizer::Split(absl::string_view text) const {
  std::vector<uint32_t> cpts = DecodeUtf8(text);
  std::vector<uint16_t> flags(cpts.size());
  // What the regexes see: std::regex's \s only knows ASCII, so llama.cpp turns every other
  // whitespace codepoint into U+000B before matching; `cpts` keeps the originals for output.
  std::vector<uint32_t> view(cpts.size());
  for (size_t i = 0; i < cpts.size(); ++i) {
    flags[i] = CodepointFlagsOf(cpts[i]);
    view[i] = (cpts[i] > 0x7F && (flags[i] & kCpWhitespace)) ? 0x0B : cpts[i];
  }
  const SplitRegex::Input input{view.data(), flags.data()};

  std::vector<size_t> lengths = {cpts.size()};
  std::vector<size_t> next;
  for (const SplitRegex& re : regexes_) {
    next.clear();
    size_t begin = 0;
    for (size_t length : lengths) {
      re.Split(input, begin, begin + length, &next);
      begin += length;
    }
    lengths.swap(next);
  }

  std::vector<std::string> words;
  words.reserve(lengths.size());
  size_t begin = 0;
  for (size_t length : lengths) {
    if (length == 0) continue;
    std::string& word = words.emplace_back();
    for (size_t i = begin; i < begin + length; ++i) AppendUtf8(cpts[i], &word);
    begin += length;
  }
  return words;
}

}  // namespace tandem
