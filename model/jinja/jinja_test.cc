// Unit tests of the Jinja language as transformers configures it. The expected outputs are
// what Python Jinja2 3.1 renders for the same source and variables with trim_blocks,
// lstrip_blocks, loopcontrols and transformers' tojson/raise_exception/strftime_now.
#include <ctime>
#include <string>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "model/jinja/template.h"
#include "nlohmann/json.hpp"

namespace tandem::jinja {
namespace {

std::tm FixedDate() {
  std::tm date{};
  date.tm_year = 2024 - 1900;
  date.tm_mon = 6;
  date.tm_mday = 26;
  date.tm_wday = 5;
  date.tm_yday = 207;
  return date;
}

absl::StatusOr<std::string> Render(const std::string& source, const std::string& variables_json,
                                   RenderOptions options = {}) {
  auto compiled = Template::Parse(source);
  if (!compiled.ok()) return compiled.status();
  options.clock = FixedDate;
  const Value variables = Value::FromJson(nlohmann::ordered_json::parse(variables_json));
  return compiled->Render(variables.dict(), options);
}

struct RenderCase {
  const char* name;
  const char* source;
  const char* variables;
  const char* expected;
};

const RenderCase kRenderCases[] = {
    {"trim_blocks", "{% if true %}\n  x\n{% endif %}\nend", "{}", "  x\nend"},
    {"lstrip_blocks", "a\n    {% if true %}yes{% endif %}  \nz", "{}", "a\nyes  \nz"},
    {"lstrip_not_for_variables", "a\n    {{ 'v' }}\n", "{}", "a\n    v"},
    {"minus_markers", "a  {%- if true -%}  b  {%- endif -%}  c", "{}", "abc"},
    {"expression_markers", "a \n {{- 'b' -}} \n c", "{}", "abc"},
    {"comment_trims", "  {# note #}\nx{#- c -#}  y", "{}", "xy"},
    {"plus_disables_lstrip", "line\n    {%+ if true %}k{% endif %}", "{}", "line\n    k"},
    {"newlines_normalized", "a\r\nb\rc\r\n", "{}", "a\nb\nc"},
    {"raw_block", "x {%- raw %} {{ y }} {% endraw %}", "{}", "x {{ y }} "},
    {"set_in_loop_does_not_leak",
     "{% set x = 1 %}{% for i in [1, 2] %}{% set x = x + i %}{{ x }}{% endfor %}{{ x }}", "{}",
     "231"},
    {"namespace_carries_out_of_loop",
     "{% set ns = namespace(n=0, s='') %}{% for i in range(4) %}{% set ns.n = ns.n + i %}{% endfor "
     "%}{{ ns.n }}",
     "{}", "6"},
    {"if_does_not_scope", "{% if true %}{% set y = 5 %}{% endif %}{{ y }}", "{}", "5"},
    {"macro_defaults_and_keywords",
     "{% macro f(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ f(1) }}{{ f(2, b=3) }}{{ f() }}",
     "{}", "[1B][23][B]"},
    {"macro_scope_is_local",
     "{% set v = 'outer' %}{% macro f() %}{% set v = 'inner' %}{{ v }}{% endmacro %}{{ f() }}{{ v "
     "}}",
     "{}", "innerouter"},
    {"loop_attributes",
     "{% for x in 'abc' %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{{ "
     "loop.length }}{{ loop.revindex }}{{ loop.revindex0 }}|{% endfor %}",
     "{}", "10TrueFalse332|21FalseFalse321|32FalseTrue310|"},
    {"loop_prev_next",
     "{% for x in [1, 2, 3] %}{{ loop.previtem is defined }}{{ loop.previtem }}-{{ loop.nextitem "
     "}};{% endfor %}",
     "{}", "False-2;True1-3;True2-;"},
    {"loop_cycle", "{% for x in range(4) %}{{ loop.cycle('a', 'b') }}{% endfor %}", "{}", "abab"},
    {"for_else_if_break_continue",
     "{% for x in [] %}no{% else %}empty{% endfor %}|{% for x in range(10) if x is odd %}{% if x > "
     "6 %}{% break %}{% endif %}{% if x == 3 %}{% continue %}{% endif %}{{ x }}{{ loop.length "
     "}},{% endfor %}",
     "{}", "empty|15,55,"},
    {"for_tuple_unpack",
     "{% for k, v in d.items() %}{{ k }}={{ v | string | length }};{% endfor %}{% for a, b in [(1, "
     "2), [3, 4]] %}{{ a + b }}{% endfor %}",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "b=1;a=52;e=2;37"},
    {"for_over_dict_and_undefined",
     "{% for k in {'x': 1, 'y': 2} %}{{ k }}{% endfor %}[{% for u in nothing %}{{ u }}{% endfor "
     "%}]",
     "{}", "xy[]"},
    {"filters_basic",
     "{{ '  x  ' | trim }}|{{ [1, 2, 3] | length }}|{{ 'abc' | upper }}|{{ ['a', 'b'] | join(', ') "
     "}}|{{ 'Hello World' | lower }}|{{ 'hello world-wide' | title }}|{{ 'abc' | capitalize }}|{{ "
     "'xay' | trim('xy') }}",
     "{}", "x|3|ABC|a, b|hello world|Hello World-Wide|Abc|a"},
    {"tojson_python_spacing", "{{ d | tojson }}",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "{\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], \"e\": {}}"},
    {"tojson_indent", "{{ d | tojson(indent=2) }}",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "{\n  \"b\": 1,\n  \"a\": [\n    1.0,\n    1e-05,\n    1e+16,\n    0.1,\n    true,\n    "
     "null,\n    \"Zürich \\\"q\\\"\\n\"\n  ],\n  \"e\": {}\n}"},
    {"tojson_sort_keys_and_ascii",
     "{{ d | tojson(sort_keys=true) }}|{{ 'é' | tojson(ensure_ascii=true) }}",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "{\"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], \"b\": 1, \"e\": "
     "{}}|\"\\u00e9\""},
    {"selectattr_map_list",
     "{{ msgs | selectattr('role', 'equalto', 'user') | map(attribute='content') | list }}|{{ msgs "
     "| rejectattr('role', 'equalto', 'user') | list | length }}|{{ [1, 0, 2] | select | list "
     "}}|{{ [1, 2, 3] | reject('odd') | list }}|{{ ['a', 'b'] | map('upper') | join }}",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "['hi', 'bye']|1|[1, 2]|[2]|AB"},
    {"default_filter",
     "{{ nope | default('d') }}{{ '' | default('e', true) }}{{ '' | default('f') }}{{ none | "
     "d('g') }}",
     "{}", "deNone"},
    {"indent_filter",
     "{{ 'a\\nb\\n\\nc\\n' | indent(2) }}|{{ 'a\\nb' | indent(first=true) }}|{{ 'a\\n\\nb' | "
     "indent(3, blank=true) }}",
     "{}", "a\n  b\n\n  c\n|    a\n    b|a\n   \n   b"},
    {"unique_replace_first_last",
     "{{ ['a', 'A', 'b', 'a'] | unique | list }}|{{ 'aaa' | replace('a', 'b', 2) }}|{{ [3, 4] | "
     "first }}{{ [3, 4] | last }}|{{ 'abc' | reverse }}",
     "{}", "['a', 'b']|bba|34|cba"},
    {"python_str_of_containers",
     "{{ {'a': 1, 'b': [1, 'x', none, true, 1.5, \"it's\"]} }}|{{ (1,) }}|{{ (1, 'a') }}|{{ none "
     "}}|{{ true }}",
     "{}", "{'a': 1, 'b': [1, 'x', None, True, 1.5, \"it's\"]}|(1,)|(1, 'a')|None|True"},
    {"items_filter", "{% for k, v in d | items %}{{ k }},{% endfor %}",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "b,a,e,"},
    {"slicing",
     "{{ [1, 2, 3, 4][::-1] }}{{ 'hello'[1:3] }}{{ 'héllo'[1] }}{{ [1, 2, 3][-1] }}{{ [1, 2, 3, 4, "
     "5][1::2] }}{{ 'abc'[-2:] }}{{ [1, 2][5:] }}{{ msgs[1:] | length }}",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "[4, 3, 2, 1]elé3[2, 4]bc[]2"},
    {"arithmetic",
     "{{ 7 // 2 }} {{ -7 // 2 }} {{ 7 % 3 }} {{ -7 % 3 }} {{ 7 / 2 }} {{ 2 ** 10 }} {{ 1 + 2.5 }} "
     "{{ 4 / 2 }} {{ -(3) }} {{ 'ab' * 3 }} {{ [0] * 2 }} {{ 0.1 + 0.2 }}",
     "{}", "3 -4 1 2 3.5 1024 3.5 2.0 -3 ababab [0, 0] 0.30000000000000004"},
    {"concat_tilde", "{{ 'a' ~ 1 ~ none ~ nope ~ [1] }}", "{}", "a1None[1]"},
    {"conditional_expression",
     "[{{ 'x' if false }}][{{ 'y' if true else 'z' }}][{{ 'p' if false else 'q' if true else 'r' "
     "}}]",
     "{}", "[][y][q]"},
    {"comparisons",
     "{{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ 'b' in 'abc' }} {{ 3 not in [1, 2] }} {{ {'a': 1} == "
     "{'a': 1} }} {{ 1 == 1.0 }} {{ 'a' < 'b' }} {{ 'k' in {'k': 0} }} {{ not 'k' in {'k': 0} }}",
     "{}", "True False True True True True True True False"},
    {"and_or_yield_operands", "{{ 0 or 'y' }} {{ 'x' and '' }}| {{ none or [] }} {{ 1 and 2 }}",
     "{}", "y | [] 2"},
    {"tests",
     "{{ x is defined }} {{ none is none }} {{ 'a' is string }} {{ {} is mapping }} {{ [] is "
     "iterable }} {{ 3 is odd }} {{ 4 is divisibleby 2 }} {{ 1 is number }} {{ 1.0 is float }} {{ "
     "true is boolean }} {{ 'a' is not string }} {{ nope is undefined }} {{ 2 is equalto 2 }} {{ "
     "'abc' is lower }} {{ 5 is gt(3) }} {{ 1 is in [1] }} {{ none is sameas none }}",
     "{}",
     "False True True True True True True True True True False True True True True True True"},
    {"string_methods",
     "{{ ' a b '.strip() }}|{{ 'a,b,,c'.split(',') }}|{{ ' a b  c '.split() }}|{{ 'a b c'.split(' "
     "', 1) }}|{{ 'hello world'.title() }}|{{ 'abc'.startswith(('x', 'a')) }}|{{ "
     "'abc'.endswith('bc') }}|{{ 'ABC'.lower() }}|{{ 'aaa'.replace('a', 'b') }}|{{ "
     "'xxhixx'.strip('x') }}|{{ '  l'.lstrip() }}{{ 'r  '.rstrip() }}|{{ 'a-b'.upper() }}|{{ "
     "'hello'.capitalize() }}|{{ '{} and {}'.format(1, 'x') }}|{{ 'abcb'.count('b') }}{{ "
     "'abc'.find('c') }}|{{ '-'.join(['a', 'b']) }}|{{ '12'.isdigit() }}",
     "{}",
     "a b|['a', 'b', '', 'c']|['a', 'b', 'c']|['a', 'b c']|Hello "
     "World|True|True|abc|bbb|hi|lr|A-B|Hello|1 and x|22|a-b|True"},
    {"dict_methods",
     "{{ d.get('b') }} {{ d.get('zz') }} {{ d.get('zz', 7) }} {{ d.keys() | list }} {{ {'x': "
     "1}.values() | list }} {{ {'x': 1}.items() | list }}",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "1 None 7 ['b', 'a', 'e'] [1] [('x', 1)]"},
    {"percent_format", "{{ 'Hello %s, %d%%' % ('x', 3) }}|{{ '%s!' % 'y' }}", "{}",
     "Hello x, 3%|y!"},
    {"attribute_falls_back_to_key",
     "{{ msgs[0].role }}{{ msgs[0]['content'] }}{{ msgs.0.content }}",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "userhihi"},
    {"undefined_prints_empty",
     "[{{ nope }}][{{ nope | length }}][{{ d.missing }}][{{ d['missing'] }}][{{ msgs[10] }}][{{ "
     "none.x }}]",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "[][0][][][][]"},
    {"filter_and_set_blocks",
     "{% filter upper %}abc{{ 'd' }}{% endfilter %}|{% set b %}  x{{ 1 }}  {% endset %}[{{ b }}]{% "
     "set c | trim %}  y  {% endset %}[{{ c }}]",
     "{}", "ABCD|[  x1  ][y]"},
    {"call_block",
     "{% macro w(t) %}<{{ t }}:{{ caller() }}>{% endmacro %}{% call w('a') %}in{% endcall %}{% "
     "macro l() %}{{ caller(1) }}{{ caller(2) }}{% endmacro %}{% call(n) l() %}[{{ n }}]{% endcall "
     "%}",
     "{}", "<a:in>[1][2]"},
    {"string_escapes", "{{ 'a\\nb\\t\\u00e9\\x41\\\\\\'' }}{{ \"q\\\"\" }}{{ 'keep\\d' }}", "{}",
     "a\nb\téA\\'q\"keep\\d"},
    {"strftime_now",
     "{{ strftime_now('%d %b %Y') }} {{ strftime_now('%Y-%m-%d %H:%M') }} {{ strftime_now('%A %B') "
     "}}",
     "{}", "26 Jul 2024 2024-07-26 00:00 Friday July"},
    {"markup_escapes_plain_strings",
     "{{ ('<b>' | safe) + '<i>' }}|{{ '<i>' + ('<b>' | safe) }}|{{ ('<' | safe) + ('>' | safe) "
     "}}|{{ '&' | e }}",
     "{}", "<b>&lt;i&gt;|&lt;i&gt;<b>|<>|&amp;"},
    {"whitespace_combo",
     "{%- for m in msgs -%}\n  {{- m.role }}: {{ m.content }}\n  {% if not loop.last %}---\n{% "
     "endif %}\n{%- endfor %}\n",
     "{\"d\": {\"b\": 1, \"a\": [1.0, 1e-05, 1e+16, 0.1, true, null, \"Zürich \\\"q\\\"\\n\"], "
     "\"e\": {}}, \"msgs\": [{\"role\": \"user\", \"content\": \"hi\"}, {\"role\": \"assistant\", "
     "\"content\": \"yo\"}, {\"role\": \"user\", \"content\": \"bye\"}]}",
     "user: hi\n---\nassistant: yo\n---\nuser: bye\n"},
    {"list_dict_literals",
     "{{ [1, [2, 3], {'k': 'v'}] }}{{ {'a': {'b': {}}} }}{{ [] }}{{ {} }}{{ [1,] }}", "{}",
     "[1, [2, 3], {'k': 'v'}]{'a': {'b': {}}}[]{}[1]"},
    {"range_and_length",
     "{{ range(3) | list }}{{ range(1, 7, 2) | list }}{{ range(3, 0, -1) | list }}{{ range(0) | "
     "list | length }}",
     "{}", "[0, 1, 2][1, 3, 5][3, 2, 1]0"},
    {"dict_global_and_int_float_filters",
     "{{ dict(a=1)['a'] }} {{ '42' | int + 1 }} {{ 'x' | int }} {{ '2.5' | float }} {{ 3 | float "
     "}} {{ -3 | abs }} {{ 2.567 | round(2) }} {{ [1, 2, 3] | sum }} {{ [3, 1, 2] | sort }} {{ [3, "
     "1, 2] | max }}",
     "{}", "1 43 0 2.5 3.0 3 2.57 6 [1, 2, 3] 3"},
};

TEST(JinjaTest, RendersAsJinja2) {
  for (const RenderCase& c : kRenderCases) {
    auto text = Render(c.source, c.variables);
    ASSERT_TRUE(text.ok()) << c.name << ": " << text.status();
    EXPECT_EQ(*text, c.expected) << c.name;
  }
}

struct ErrorCase {
  const char* name;
  const char* source;
  const char* expected;  // the exact message when `exact`, else its prefix (the error kind)
  bool exact;
};

const ErrorCase kErrorCases[] = {
    {"error_add_none", "{{ none + 1 }}", "TypeError:", false},
    {"error_add_undefined", "{{ nope + 1 }}", "UndefinedError:", false},
    {"error_iterate_none", "{% for x in none %}{% endfor %}", "TypeError:", false},
    {"error_attribute_of_undefined", "{{ nope.attr }}", "UndefinedError:", false},
    {"error_raise_exception", "{{ raise_exception('boom: ' ~ 1) }}", "boom: 1", true},
    {"error_tojson_generator", "{{ [1] | map('string') | tojson }}", "TypeError:", false},
    {"error_length_generator", "{{ [1] | select | length }}", "TypeError:", false},
    {"error_compare_str_int", "{{ 'a' < 1 }}", "TypeError:", false},
    {"error_str_plus_int", "{{ 'a' + 1 }}", "TypeError:", false},
    {"error_namespace_assign", "{% set x = 1 %}{% set x.y = 2 %}", "TemplateRuntimeError:", false},
    {"error_tojson_undefined", "{{ nope | tojson }}", "TypeError:", false},
    {"error_call_missing_method", "{{ 'a'.nosuch() }}", "UndefinedError:", false},
};

TEST(JinjaTest, FailsWhereJinja2Fails) {
  for (const ErrorCase& c : kErrorCases) {
    auto text = Render(c.source, "{}");
    ASSERT_FALSE(text.ok()) << c.name << " rendered: " << *text;
    EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument) << c.name;
    const std::string message(text.status().message());
    if (c.exact) {
      EXPECT_EQ(message, c.expected) << c.name;
    } else {
      EXPECT_TRUE(absl::StartsWith(message, c.expected)) << c.name << ": " << message;
    }
  }
}

// transformers' AssistantTracker renders the body of {% generation %} unchanged.
TEST(JinjaTest, GenerationTagRendersItsBody) {
  auto text = Render("a{% generation %}{{ 'b' }}{% endgeneration %}c", "{}");
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "abc");
}

TEST(JinjaTest, SyntaxErrorsNameLineAndColumn) {
  const std::pair<const char*, const char*> cases[] = {
      {"{% if x %}\nno end", "line 2"},
      {"ok\n{{ 1 + }}", "line 2, column 8"},
      {"{% endfor %}", "line 1"},
      {"{% for x in y %}{% endif %}", "line 1, column 20"},
      {"\n\n  {% frobnicate %}", "line 3, column 6"},
      {"{{ 'abc }}", "line 1, column 4"},
      {"{{ (1 }}", "line 1"},
      {"{# never closed", "line 1, column 3"},
      {"{% break %}", "line 1"},
  };
  for (const auto& [source, where] : cases) {
    auto compiled = Template::Parse(source);
    ASSERT_FALSE(compiled.ok()) << source;
    EXPECT_EQ(compiled.status().code(), absl::StatusCode::kInvalidArgument) << source;
    EXPECT_TRUE(absl::StrContains(compiled.status().message(), where))
        << source << ": " << compiled.status();
  }
}

// A template is data from someone else's GGUF file: rendering it must stay bounded.
TEST(JinjaTest, HostileTemplatesHitLimits) {
  RenderOptions small;
  small.limits.max_output_bytes = 1000;
  auto big_output = Render("{% for i in range(100000) %}xxxxxxxxxx{% endfor %}", "{}", small);
  EXPECT_EQ(big_output.status().code(), absl::StatusCode::kResourceExhausted)
      << big_output.status();

  auto big_string = Render("{{ 'x' * 10000000000 }}", "{}");
  EXPECT_EQ(big_string.status().code(), absl::StatusCode::kResourceExhausted)
      << big_string.status();

  auto doubling = Render(
      "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}"
      "{% endfor %}{{ ns.s | length }}",
      "{}");
  EXPECT_EQ(doubling.status().code(), absl::StatusCode::kResourceExhausted) << doubling.status();

  auto recursion = Render("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", "{}");
  EXPECT_EQ(recursion.status().code(), absl::StatusCode::kResourceExhausted) << recursion.status();

  auto busy = Render(
      "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "{}");
  EXPECT_EQ(busy.status().code(), absl::StatusCode::kResourceExhausted) << busy.status();

  auto huge_range = Render("{{ range(1000000000) | length }}", "{}");
  EXPECT_EQ(huge_range.status().code(), absl::StatusCode::kResourceExhausted)
      << huge_range.status();

  const std::string deep = "{{ " + std::string(5000, '(') + "1" + std::string(5000, ')') + " }}";
  auto deep_parse = Template::Parse(deep);
  EXPECT_EQ(deep_parse.status().code(), absl::StatusCode::kInvalidArgument) << deep_parse.status();

  std::string nested_blocks;
  for (int i = 0; i < 5000; ++i) nested_blocks += "{% if true %}";
  auto deep_blocks = Template::Parse(nested_blocks);
  EXPECT_EQ(deep_blocks.status().code(), absl::StatusCode::kInvalidArgument)
      << deep_blocks.status();
}

TEST(JinjaTest, TemplateRendersManyTimes) {
  auto compiled =
      Template::Parse("{% set ns = namespace(n=0) %}{% set ns.n = ns.n + x %}{{ ns.n }}");
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  for (int x = 1; x <= 3; ++x) {
    ValueDict variables;
    variables.Set("x", Value::Int(x));
    auto text = compiled->Render(variables);
    ASSERT_TRUE(text.ok()) << text.status();
    EXPECT_EQ(*text, std::to_string(x));  // namespace state does not survive a render
  }
}

TEST(JinjaTest, PythonFloatRepr) {
  EXPECT_EQ(FormatPythonFloat(1.0), "1.0");
  EXPECT_EQ(FormatPythonFloat(0.1), "0.1");
  EXPECT_EQ(FormatPythonFloat(1e-05), "1e-05");
  EXPECT_EQ(FormatPythonFloat(0.0001), "0.0001");
  EXPECT_EQ(FormatPythonFloat(1e16), "1e+16");
  EXPECT_EQ(FormatPythonFloat(123456789012345.0), "123456789012345.0");
  EXPECT_EQ(FormatPythonFloat(-2.5), "-2.5");
  EXPECT_EQ(FormatPythonFloat(1.5e300), "1.5e+300");
}

}  // namespace
}  // namespace tandem::jinja
