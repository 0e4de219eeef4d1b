#include "model/split_regex.h"

#include <cstdint>
#include <limits>
#include <memory>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/unicode.h"

namespace tandem {

constexpr uint32_t kUnbounded = std::numeric_limits<uint32_t>::max();
constexpr size_t kNoMatch = std::numeric_limits<size_t>::max();

bool SplitRegex::CharClass::Matches(uint32_t cpt, uint16_t flags) const {
  bool member = (flags & flag_mask) != 0;
  for (size_t i = 0; !member && i < ranges.size(); ++i) {
    member = cpt >= ranges[i].first && cpt <= ranges[i].second;
  }
  return member != negated;
}

// Parses the pattern into a tree, then flattens the tree into SplitRegex's program.
class SplitRegexCompiler {
 public:
  explicit SplitRegexCompiler(SplitRegex* re) : re_(re), pattern_(DecodeUtf8(re->pattern_)) {}

  absl::Status Compile() {
    std::unique_ptr<Node> root;
    TANDEM_ASSIGN_OR_RETURN(root, ParseAlternation(/*ignore_case=*/false));
    if (pos_ != pattern_.size()) return Error("unbalanced ')'");
    Emit(*root);
    Add({.op = SplitRegex::Op::kMatch});
    return absl::OkStatus();
  }

 private:
  using Op = SplitRegex::Op;
  using CharClass = SplitRegex::CharClass;

  struct Node {
    enum class Kind { kClass, kSequence, kAlternation, kRepeat, kLookahead, kEnd };
    Kind kind = Kind::kClass;
    int32_t class_index = 0;
    uint32_t min = 0, max = 0;
    bool negated = false;
    std::vector<std::unique_ptr<Node>> children;
  };

  static std::unique_ptr<Node> MakeNode(Node::Kind kind) {
    auto node = std::make_unique<Node>();
    node->kind = kind;
    return node;
  }

  absl::Status Error(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("regex '", re_->pattern_, "': ", what, " at codepoint ", pos_));
  }
  bool AtEnd() const { return pos_ >= pattern_.size(); }
  uint32_t Peek() const { return pattern_[pos_]; }
  bool Consume(uint32_t c) {
    if (AtEnd() || Peek() != c) return false;
    ++pos_;
    return true;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseAlternation(bool ignore_case) {
    auto alt = MakeNode(Node::Kind::kAlternation);
    do {
      std::unique_ptr<Node> seq;
      TANDEM_ASSIGN_OR_RETURN(seq, ParseSequence(ignore_case));
      alt->children.push_back(std::move(seq));
    } while (Consume('|'));
    if (alt->children.size() == 1) return std::move(alt->children[0]);
    return alt;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseSequence(bool ignore_case) {
    auto seq = MakeNode(Node::Kind::kSequence);
    while (!AtEnd() && Peek() != '|' && Peek() != ')') {
      std::unique_ptr<Node> atom;
      TANDEM_ASSIGN_OR_RETURN(atom, ParseAtom(ignore_case));
      TANDEM_ASSIGN_OR_RETURN(atom, ParseQuantifier(std::move(atom)));
      seq->children.push_back(std::move(atom));
    }
    return seq;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseAtom(bool ignore_case) {
    if (Consume('(')) {
      bool group_ignore_case = ignore_case;
      std::unique_ptr<Node> lookahead;
      if (Consume('?')) {
        if (Consume(':')) {
        } else if (Consume('i')) {
          if (!Consume(':')) return Error("expected ':' after '(?i'");
          group_ignore_case = true;
        } else if (Consume('=') || Consume('!')) {
          lookahead = MakeNode(Node::Kind::kLookahead);
          lookahead->negated = pattern_[pos_ - 1] == '!';
        } else {
          return Error("unsupported group");
        }
      }
      std::unique_ptr<Node> inner;
      TANDEM_ASSIGN_OR_RETURN(inner, ParseAlternation(group_ignore_case));
      if (!Consume(')')) return Error("missing ')'");
      if (!lookahead) return inner;
      lookahead->children.push_back(std::move(inner));
      return lookahead;
    }
    if (Consume('$')) return MakeNode(Node::Kind::kEnd);
    CharClass cls;
    if (Consume('[')) {
      TANDEM_RETURN_IF_ERROR(ParseBracket(ignore_case, &cls));
    } else if (Consume('.')) {
      cls.ranges = {{'\n', '\n'}, {'\r', '\r'}};
      cls.negated = true;
    } else if (Consume('\\')) {
      TANDEM_RETURN_IF_ERROR(ParseEscape(ignore_case, &cls));
    } else {
      const uint32_t c = pattern_[pos_++];
      if (c == '*' || c == '+' || c == '?' || c == '{') return Error("nothing to repeat");
      AddLiteral(c, c, ignore_case, &cls);
    }
    auto node = MakeNode(Node::Kind::kClass);
    node->class_index = static_cast<int32_t>(re_->classes_.size());
    re_->classes_.push_back(std::move(cls));
    return node;
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseQuantifier(std::unique_ptr<Node> atom) {
    uint32_t min = 0, max = 0;
    if (Consume('?')) {
      max = 1;
    } else if (Consume('*')) {
      max = kUnbounded;
    } else if (Consume('+')) {
      min = 1;
      max = kUnbounded;
    } else if (Consume('{')) {
      TANDEM_ASSIGN_OR_RETURN(min, ParseNumber());
      max = min;
      if (Consume(',')) {
        max = kUnbounded;
        if (!AtEnd() && Peek() != '}') {
          TANDEM_ASSIGN_OR_RETURN(max, ParseNumber());
        }
      }
      if (!Consume('}') || max < min) return Error("bad {n,m}");
    } else {
      return atom;
    }
    if (Consume('?') || Consume('+')) return Error("lazy/possessive quantifiers are unsupported");
    if (atom->kind == Node::Kind::kLookahead || atom->kind == Node::Kind::kEnd) {
      return Error("quantified assertion");
    }
    auto repeat = MakeNode(Node::Kind::kRepeat);
    repeat->min = min;
    repeat->max = max;
    repeat->children.push_back(std::move(atom));
    return repeat;
  }

  absl::StatusOr<uint32_t> ParseNumber() {
    uint32_t value = 0;
    bool any = false;
    while (!AtEnd() && Peek() >= '0' && Peek() <= '9') {
      value = value * 10 + (pattern_[pos_++] - '0');
      if (value > 1000) return Error("repeat count too large");
      any = true;
    }
    if (!any) return Error("expected a number");
    return value;
  }

  absl::Status ParseBracket(bool ignore_case, CharClass* cls) {
    cls->negated = Consume('^');
    bool first = true;
    while (!AtEnd() && (Peek() != ']' || first)) {
      first = false;
      uint32_t lo;
      if (Consume('\\')) {
        CharClass escaped;
        TANDEM_RETURN_IF_ERROR(ParseEscape(ignore_case, &escaped));
        if (escaped.negated) return Error("negated escape inside [...]");
        const bool single = escaped.flag_mask == 0 && escaped.ranges.size() == 1 &&
                            escaped.ranges[0].first == escaped.ranges[0].second && !ignore_case;
        if (!single || pos_ + 1 >= pattern_.size() || Peek() != '-' || pattern_[pos_ + 1] == ']') {
          cls->flag_mask |= escaped.flag_mask;
          cls->ranges.insert(cls->ranges.end(), escaped.ranges.begin(), escaped.ranges.end());
          continue;
        }
        lo = escaped.ranges[0].first;
      } else {
        lo = pattern_[pos_++];
      }
      uint32_t hi = lo;
      if (pos_ + 1 < pattern_.size() && Peek() == '-' && pattern_[pos_ + 1] != ']') {
        ++pos_;
        if (Consume('\\')) {
          CharClass escaped;
          TANDEM_RETURN_IF_ERROR(ParseEscape(false, &escaped));
          if (escaped.flag_mask != 0 || escaped.ranges.size() != 1) return Error("bad range");
          hi = escaped.ranges[0].first;
        } else {
          hi = pattern_[pos_++];
        }
        if (hi < lo) return Error("range out of order");
      }
      AddLiteral(lo, hi, ignore_case, cls);
    }
    if (!Consume(']')) return Error("missing ']'");
    return absl::OkStatus();
  }

  // After a backslash.
  absl::Status ParseEscape(bool ignore_case, CharClass* cls) {
    if (AtEnd()) return Error("trailing backslash");
    const uint32_t c = pattern_[pos_++];
    switch (c) {
      case 's':
      case 'S':
        cls->ranges = {{'\t', '\r'}, {' ', ' '}};
        cls->negated = c == 'S';
        return absl::OkStatus();
      case 'd':
        cls->ranges = {{'0', '9'}};
        return absl::OkStatus();
      case 'p': {
        if (!Consume('{') || AtEnd()) return Error("expected \\p{X}");
        const uint32_t name = pattern_[pos_++];
        if (!Consume('}')) return Error("only one-letter \\p{X} categories are supported");
        switch (name) {
          case 'L':
            cls->flag_mask = kCpLetter;
            break;
          case 'N':
            cls->flag_mask = kCpNumber;
            break;
          case 'P':
            cls->flag_mask = kCpPunctuation;
            break;
          default:
            return Error("unsupported \\p category");
        }
        return absl::OkStatus();
      }
      case 'r':
        AddLiteral('\r', '\r', false, cls);
        return absl::OkStatus();
      case 'n':
        AddLiteral('\n', '\n', false, cls);
        return absl::OkStatus();
      case 't':
        AddLiteral('\t', '\t', false, cls);
        return absl::OkStatus();
      default:
        break;
    }
    const bool is_word_char =
        (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (is_word_char) return Error("unsupported escape");
    AddLiteral(c, c, ignore_case, cls);
    return absl::OkStatus();
  }

  static void AddLiteral(uint32_t lo, uint32_t hi, bool ignore_case, CharClass* cls) {
    cls->ranges.emplace_back(lo, hi);
    if (!ignore_case) return;
    // ASCII case folding is all (?i:'s|'t|...) needs.
    auto add_other_case = [&](uint32_t from, uint32_t to, int32_t delta) {
      const uint32_t a = std::max(lo, from), b = std::min(hi, to);
      if (a <= b) cls->ranges.emplace_back(a + delta, b + delta);
    };
    add_other_case('a', 'z', 'A' - 'a');
    add_other_case('A', 'Z', 'a' - 'A');
  }

  int32_t Add(SplitRegex::Inst inst) {
    re_->program_.push_back(inst);
    return static_cast<int32_t>(re_->program_.size() - 1);
  }
  int32_t Here() const { return static_cast<int32_t>(re_->program_.size()); }

  void Emit(const Node& node) {
    auto& program = re_->program_;
    switch (node.kind) {
      case Node::Kind::kClass:
        Add({.op = Op::kClass, .arg = node.class_index});
        break;
      case Node::Kind::kSequence:
        for (const auto& child : node.children) Emit(*child);
        break;
      case Node::Kind::kAlternation: {
        std::vector<int32_t> jumps;
        for (size_t i = 0; i < node.children.size(); ++i) {
          const bool last = i + 1 == node.children.size();
          const int32_t split = last ? -1 : Add({.op = Op::kSplit});
          if (!last) program[split].x = Here();
          Emit(*node.children[i]);
          if (!last) {
            jumps.push_back(Add({.op = Op::kJump}));
            program[split].y = Here();
          }
        }
        for (int32_t jump : jumps) program[jump].x = Here();
        break;
      }
      case Node::Kind::kRepeat: {
        const Node& body = *node.children[0];
        if (body.kind == Node::Kind::kClass) {
          Add({.op = Op::kRun, .arg = body.class_index, .min = node.min, .max = node.max});
          break;
        }
        for (uint32_t i = 0; i < node.min; ++i) Emit(body);
        if (node.max == kUnbounded) {
          const int32_t split = Add({.op = Op::kSplit});
          program[split].x = Here();
          Emit(body);
          Add({.op = Op::kJump, .x = split});
          program[split].y = Here();
        } else {
          std::vector<int32_t> splits;
          for (uint32_t i = node.min; i < node.max; ++i) {
            splits.push_back(Add({.op = Op::kSplit}));
            program[splits.back()].x = Here();
            Emit(body);
          }
          for (int32_t split : splits) program[split].y = Here();
        }
        break;
      }
      case Node::Kind::kLookahead: {
        const int32_t look = Add({.op = Op::kLookahead, .negated = node.negated});
        program[look].x = Here();
        Emit(*node.children[0]);
        Add({.op = Op::kMatch});
        program[look].y = Here();
        break;
      }
      case Node::Kind::kEnd:
        Add({.op = Op::kEnd});
        break;
    }
  }

  SplitRegex* re_;
  std::vector<uint32_t> pattern_;
  size_t pos_ = 0;
};

absl::StatusOr<SplitRegex> SplitRegex::Compile(absl::string_view pattern) {
  SplitRegex re;
  re.pattern_ = std::string(pattern);
  SplitRegexCompiler compiler(&re);
  TANDEM_RETURN_IF_ERROR(compiler.Compile());
  return re;
}

size_t SplitRegex::Run(const Input& input, size_t end, int32_t pc, size_t pos) const {
  // A backtrack point: resume at `pc` with position `pos + count`; kRun points count down
  // from the longest run to `min`.
  struct Frame {
    int32_t pc;
    size_t pos;
    size_t count;
    size_t min;
  };
  std::vector<Frame> stack;
  for (;;) {
    const Inst& inst = program_[pc];
    bool ok = true;
    switch (inst.op) {
      case Op::kClass:
        ok = pos < end && classes_[inst.arg].Matches(input.cpts[pos], input.flags[pos]);
        if (ok) {
          ++pos;
          ++pc;
        }
        break;
      case Op::kRun: {
        const CharClass& cls = classes_[inst.arg];
        size_t count = 0;
        while (pos + count < end && count < inst.max &&
               cls.Matches(input.cpts[pos + count], input.flags[pos + count])) {
          ++count;
        }
        ok = count >= inst.min;
        if (ok) {
          if (count > inst.min) stack.push_back({pc + 1, pos, count - 1, inst.min});
          pos += count;
          ++pc;
        }
        break;
      }
      case Op::kSplit:
        stack.push_back({inst.y, pos, 0, 0});
        pc = inst.x;
        break;
      case Op::kJump:
        pc = inst.x;
        break;
      case Op::kLookahead:
        ok = (Run(input, end, inst.x, pos) != kNoMatch) != inst.negated;
        if (ok) pc = inst.y;
        break;
      case Op::kEnd:
        ok = pos == end;
        if (ok) ++pc;
        break;
      case Op::kMatch:
        return pos;
    }
    if (ok) continue;
    if (stack.empty()) return kNoMatch;
    Frame& frame = stack.back();
    pc = frame.pc;
    pos = frame.pos + frame.count;
    if (frame.count > frame.min) {
      --frame.count;
    } else {
      stack.pop_back();
    }
  }
}

size_t SplitRegex::MatchAt(const Input& input, size_t begin, size_t end, size_t pos) const {
  (void)begin;  // no look-behind or `^`, so the range start never matters
  const size_t match_end = Run(input, end, 0, pos);
  return match_end == kNoMatch ? pos : match_end;
}

void SplitRegex::Split(const Input& input, size_t begin, size_t end,
                       std::vector<size_t>* lengths) const {
  size_t emitted = begin;
  size_t pos = begin;
  while (pos < end) {
    const size_t match_end = MatchAt(input, begin, end, pos);
    if (match_end == pos) {  // no match, or an empty one (none of our patterns can)
      ++pos;
      continue;
    }
    if (pos > emitted) lengths->push_back(pos - emitted);
    lengths->push_back(match_end - pos);
    emitted = pos = match_end;
  }
  if (end > emitted) lengths->push_back(end - emitted);
}

}  // namespace tandem
