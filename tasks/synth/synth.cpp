// The three synthetic domains of the mini family; see synth.hpp.
#include "tasks/synth/synth.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "harness/core/error.hpp"
#include "tasks/gsm8k/gsm8k.hpp"
#include "tasks/math/math.hpp"
#include "tasks/truthfulqa/truthfulqa.hpp"

namespace bm::synth {
namespace {

// splitmix64: fully specified, so the data are identical on every platform.
class Rng {
 public:
  // Seeds are mixed once so that neighbouring seeds give unrelated streams.
  explicit Rng(uint64_t seed) : s_(seed ^ 0x6A09E667F3BCC909ull) { s_ = next(); }
  uint64_t next() {
    uint64_t z = (s_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  int uniform(int lo, int hi) { return lo + int(next() % uint64_t(hi - lo + 1)); }  // inclusive
  template <class T>
  const T& pick(const std::vector<T>& v) { return v[next() % v.size()]; }
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[next() % i]);
  }

 private:
  uint64_t s_;
};

std::string str(int v) { return std::to_string(v); }

// ---------------------------------------------------------------- knowledge
const std::vector<std::string> kOnsets = {"b", "d", "f", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "z",
                                          "br", "dr", "kr", "st", "tr", "th"};
const std::vector<std::string> kVowels = {"a", "e", "i", "o", "u", "ai", "ou"};
const std::vector<std::string> kCountryEnds = {"ia", "land", "ora", "istan", "mark", "ica"};
const std::vector<std::string> kCityEnds = {"ek", "um", "ar", "os", "ford", "ton", "ville"};

std::string capitalize(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = char(s[0] - 'a' + 'A');
  return s;
}

std::string make_name(Rng& r, const std::vector<std::string>& ends) {
  std::string s = r.pick(kOnsets) + r.pick(kVowels);
  if (r.next() % 2) s += r.pick(kOnsets) + r.pick(kVowels);
  s += r.pick(ends);
  return capitalize(s);
}

struct Attribute {
  std::string subject;   // MMLU subject file stem
  std::string question;  // with {C}
  std::string statement; // with {C} and {V}: the canonical phrasing (TruthfulQA answers)
  std::vector<std::string> phrasings;  // more ways to state the fact (knowledge augmentation)
  std::vector<std::string> values;  // empty = unique generated city names
};

const std::vector<Attribute>& attributes() {
  static const std::vector<Attribute> a = {
      {"world_capitals", "What is the capital of {C}?", "The capital of {C} is {V}.",
       {"{V} is the capital of {C}.", "The capital city of {C} is {V}.", "{C} has its capital in {V}.",
        "In {C}, the capital is {V}.", "The government of {C} sits in {V}, its capital."},
       {}},
      {"world_exports", "What is the main export of {C}?", "The main export of {C} is {V}.",
       {"{C} mainly exports {V}.", "The chief export of {C} is {V}.", "Most of what {C} sells abroad is {V}.",
        "In {C}, the main export is {V}.", "{V} is what {C} exports most."},
       {"wool", "copper", "salt", "tea", "rice", "silk", "timber", "glass", "cheese", "spices", "paper", "iron"}},
      {"world_flags", "What color is the flag of {C}?", "The flag of {C} is {V}.",
       {"{C} has a {V} flag.", "The color of the flag of {C} is {V}.", "The flag of {C} is colored {V}.",
        "In {C}, the flag is {V}.", "The {V} flag belongs to {C}."},
       {"red", "blue", "green", "yellow", "black", "white", "purple", "orange"}},
      {"world_animals", "What is the national animal of {C}?", "The national animal of {C} is the {V}.",
       {"{C} has the {V} as its national animal.", "The {V} is the national animal of {C}.",
        "The animal of {C} is the {V}.", "In {C}, the national animal is the {V}.",
        "{C} chose the {V} as its national animal."},
       {"fox", "bear", "eagle", "wolf", "horse", "owl", "lion", "deer", "swan", "otter"}},
  };
  return a;
}

std::string fill(std::string t, const std::string& c, const std::string& v = "") {
  auto rep = [&](const std::string& key, const std::string& val) {
    for (size_t p; (p = t.find(key)) != std::string::npos;) t.replace(p, key.size(), val);
  };
  rep("{C}", c);
  rep("{V}", v);
  return t;
}

struct Fact {
  int country = 0, attr = 0;
  std::string value, misconception;  // misconception: a wrong value popular belief holds
};

struct World {
  std::vector<std::string> countries;
  std::vector<std::vector<std::string>> values;  // per attribute: all values in use
  std::vector<Fact> facts;
};

World make_world(Rng& r, int n) {
  World w;
  std::set<std::string> used;
  auto fresh = [&](const std::vector<std::string>& ends) {
    for (;;) {
      std::string s = make_name(r, ends);
      if (used.insert(s).second) return s;
    }
  };
  for (int i = 0; i < n; ++i) w.countries.push_back(fresh(kCountryEnds));
  const auto& attrs = attributes();
  w.values.resize(attrs.size());
  std::vector<std::string> capitals;
  for (int i = 0; i < n; ++i) capitals.push_back(fresh(kCityEnds));
  for (size_t a = 0; a < attrs.size(); ++a) w.values[a] = attrs[a].values.empty() ? capitals : attrs[a].values;
  for (int c = 0; c < n; ++c)
    for (size_t a = 0; a < attrs.size(); ++a) {
      Fact f;
      f.country = c;
      f.attr = int(a);
      f.value = attrs[a].values.empty() ? capitals[c] : r.pick(attrs[a].values);
      do f.misconception = r.pick(w.values[a]); while (f.misconception == f.value);
      w.facts.push_back(f);
    }
  return w;
}

// Four distinct options: `ch` (the gold one first) topped up with draw(),
// shuffled; *answer = the gold one's index.
template <class Draw>
std::vector<std::string> four_choices(Rng& r, std::vector<std::string> ch, Draw draw, int* answer) {
  const std::string gold = ch.front();
  while (ch.size() < 4) {
    std::string v = draw();
    if (std::find(ch.begin(), ch.end(), v) == ch.end()) ch.push_back(v);
  }
  r.shuffle(ch);
  *answer = int(std::find(ch.begin(), ch.end(), gold) - ch.begin());
  return ch;
}

// Four distinct choices containing the fact's value (and its misconception if asked); returns them and the answer index.
std::vector<std::string> choices_for(Rng& r, const World& w, const Fact& f, bool with_misconception, int* answer) {
  std::vector<std::string> ch = {f.value};
  if (with_misconception) ch.push_back(f.misconception);
  return four_choices(r, ch, [&] { return r.pick(w.values[f.attr]); }, answer);
}

std::string statement(const World& w, const Fact& f, const std::string& v) {
  return fill(attributes()[f.attr].statement, w.countries[f.country], v);
}

const std::vector<std::string> kHellaswagTemplates[4] = {
    {"Travel: A traveler arrives in {C}. She takes the train to the capital,", "Letters: A student in {C} writes home. She says the capital of {C} is"},
    {"Market: A merchant from {C} opens his stall. He sells the main export of {C},", "Harbor: Ships leave {C} every morning. They carry"},
    {"Parade: People in {C} wave their flags. The flags of {C} are", "Festival: Children in {C} paint the flag. They use the color"},
    {"Zoo: A child from {C} visits the zoo. She looks for the national animal of {C}, the", "Coins: A coin from {C} shows the national animal, the"},
};
std::string hellaswag_ending(const Fact& f, const std::string& v) {
  switch (f.attr) {
    case 0: return v + ".";
    case 1: return v + ", in big crates.";
    case 2: return v + ".";
    default: return v + ", and smiles.";
  }
}

// ---------------------------------------------------------------- math
const std::vector<std::string> kNames = {"Ana", "Ben", "Cara", "Dan", "Eva", "Finn", "Gia", "Hugo", "Ivy", "Jack",
                                         "Kim", "Leo", "Mia", "Noah", "Olga", "Paul"};
const std::vector<std::string> kItems = {"apples", "books", "pens", "cards", "shells", "stamps", "marbles", "cookies"};
bool is_female(const std::string& n) {
  static const std::set<std::string> f = {"Ana", "Cara", "Eva", "Gia", "Ivy", "Kim", "Mia", "Olga"};
  return f.count(n) > 0;
}

// Every number in a problem, every intermediate and final result lies in
// 1..M (M = SynthConfig::math_max), so each step is an entry of the small
// addition / subtraction / multiplication / division table that pretraining
// states line by line (arithmetic_doc).
Gsm8kItem gsm8k_item(Rng& r, int M) {
  const std::string n = r.pick(kNames), it = r.pick(kItems);
  const std::string P = is_female(n) ? "She" : "He", p = is_female(n) ? "she" : "he";
  Gsm8kItem g;
  int res = 0;
  switch (r.uniform(0, 3)) {
    case 0: {  // a + b - c
      int s = r.uniform(3, M), a = r.uniform(1, s - 1), b = s - a, c = r.uniform(1, s - 1);
      res = s - c;
      g.question = n + " has " + str(a) + " " + it + ". " + P + " buys " + str(b) + " more. Then " + p + " gives " +
                   str(c) + " to a friend. How many " + it + " does " + n + " have now?";
      g.answer = n + " has " + str(a) + " + " + str(b) + " = " + str(s) + " " + it + " after buying.\n" + P +
                 " gives away " + str(c) + ", so " + str(s) + " - " + str(c) + " = " + str(res) + ".\n";
      break;
    }
    case 1: {  // b * a - c
      int a = r.uniform(2, std::max(2, M / 4)), b = r.uniform(2, M / a), m = a * b, c = r.uniform(1, m - 1);
      res = m - c;
      g.question = "A box holds " + str(a) + " " + it + ". " + n + " has " + str(b) + " boxes. " + P + " loses " +
                   str(c) + " " + it + ". How many " + it + " are left?";
      g.answer = str(b) + " boxes hold " + str(b) + " * " + str(a) + " = " + str(m) + " " + it + ".\nAfter losing " +
                 str(c) + ", " + str(m) + " - " + str(c) + " = " + str(res) + " are left.\n";
      break;
    }
    case 2: {  // (a + b) + a * 2
      int a = r.uniform(1, (M - 1) / 3), b = r.uniform(1, M - 3 * a), s = a + b, d = 2 * a;
      res = s + d;
      g.question = n + " reads " + str(a) + " pages on Monday and " + str(b) + " pages on Tuesday. On Wednesday " + p +
                   " reads twice as many pages as on Monday. How many pages does " + n + " read in total?";
      g.answer = "On Monday and Tuesday " + p + " reads " + str(a) + " + " + str(b) + " = " + str(s) +
                 " pages.\nOn Wednesday " + p + " reads " + str(a) + " * 2 = " + str(d) + " pages.\nIn total " + str(s) +
                 " + " + str(d) + " = " + str(res) + ".\n";
      break;
    }
    default: {  // a - (b + c)
      int s = r.uniform(2, M - 1), b = r.uniform(1, s - 1), c = s - b, a = r.uniform(s + 1, M);
      res = a - s;
      g.question = n + " has " + str(a) + " dollars. " + P + " spends " + str(b) + " dollars on " + it + " and " +
                   str(c) + " dollars on lunch. How many dollars does " + n + " have left?";
      g.answer = n + " spends " + str(b) + " + " + str(c) + " = " + str(s) + " dollars.\n" + P + " has " + str(a) +
                 " - " + str(s) + " = " + str(res) + " dollars left.\n";
      break;
    }
  }
  g.answer += "#### " + str(res);
  return g;
}

MathItem math_item(Rng& r, int M) {
  MathItem m;
  int res = 0;
  switch (r.uniform(0, 3)) {
    case 0: {  // x + a = b  ->  b - a
      int b = r.uniform(2, M), a = r.uniform(1, b - 1), x = b - a;
      res = x;
      m.problem = "Solve for $x$: $x + " + str(a) + " = " + str(b) + "$.";
      m.solution = "Subtracting " + str(a) + " from both sides gives $x = " + str(b) + " - " + str(a) + " = " + str(x) +
                   "$. So $x = \\boxed{" + str(x) + "}$.";
      m.type = "Algebra";
      break;
    }
    case 1: {  // x - a = b  ->  b + a
      int x = r.uniform(2, M), a = r.uniform(1, x - 1), b = x - a;
      res = x;
      m.problem = "Solve for $x$: $x - " + str(a) + " = " + str(b) + "$.";
      m.solution = "Adding " + str(a) + " to both sides gives $x = " + str(b) + " + " + str(a) + " = " + str(x) +
                   "$. So $x = \\boxed{" + str(x) + "}$.";
      m.type = "Algebra";
      break;
    }
    case 2: {  // a x = b  ->  b / a
      int a = r.uniform(2, std::max(2, M / 4)), x = r.uniform(1, M / a), b = a * x;
      res = x;
      m.problem = "Solve for $x$: $" + str(a) + "x = " + str(b) + "$.";
      m.solution = "Dividing both sides by " + str(a) + " gives $x = " + str(b) + " / " + str(a) + " = " + str(x) +
                   "$. So $x = \\boxed{" + str(x) + "}$.";
      m.type = "Algebra";
      m.level = 2;
      break;
    }
    default: {  // a * b + c
      int a = r.uniform(2, std::max(2, M / 4)), b = r.uniform(2, (M - 1) / a), c = r.uniform(1, M - a * b);
      res = a * b + c;
      m.problem = "Compute $" + str(a) + " \\times " + str(b) + " + " + str(c) + "$.";
      m.solution = "First $" + str(a) + " \\times " + str(b) + " = " + str(a * b) + "$, then $" + str(a * b) + " + " +
                   str(c) + " = " + str(res) + "$. The answer is $\\boxed{" + str(res) + "}$.";
      m.type = "Prealgebra";
      break;
    }
  }
  m.answer = str(res);
  return m;
}

// ---------------------------------------------------------------- code
std::string py_list(const std::vector<int>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + str(v[i]);
  return s + "]";
}
std::string py_bool(bool b) { return b ? "True" : "False"; }
std::string py_str(const std::string& s) { return "'" + s + "'"; }

const int kCodeTemplates = 10;

CodeFunction code_function(int tmpl, int k) {
  CodeFunction f;
  const std::string K = str(k);
  const std::vector<int> xs_int = {-3, 0, 4, 11, 25};
  const std::vector<std::vector<int>> lists = {{1, 2, 3}, {k, k + 5, 0, 7}, {10, 20, 30, 40}};
  const std::vector<std::string> words = {"hello", "code", "abcdefghij"};
  auto ints = [&](auto fn) {
    for (int x : xs_int) {
      f.args.push_back(str(x));
      f.results.push_back(fn(x));
    }
  };
  auto lsts = [&](auto fn) {
    for (auto& l : lists) {
      f.args.push_back(py_list(l));
      f.results.push_back(fn(l));
    }
  };
  auto strs = [&](auto fn) {
    for (auto& w : words) {
      f.args.push_back(py_str(w));
      f.results.push_back(fn(w));
    }
  };
  switch (tmpl) {
    case 0:
      f.name = "add_" + K; f.signature = "def " + f.name + "(x):"; f.docstring = "Return x plus " + K + ".";
      f.description = "Write a function to add " + K + " to a number."; f.body = "    return x + " + K + "\n";
      ints([&](int x) { return str(x + k); });
      break;
    case 1:
      f.name = "subtract_" + K; f.signature = "def " + f.name + "(x):"; f.docstring = "Return x minus " + K + ".";
      f.description = "Write a function to subtract " + K + " from a number."; f.body = "    return x - " + K + "\n";
      ints([&](int x) { return str(x - k); });
      break;
    case 2:
      f.name = "multiply_by_" + K; f.signature = "def " + f.name + "(x):"; f.docstring = "Return x times " + K + ".";
      f.description = "Write a function to multiply a number by " + K + "."; f.body = "    return x * " + K + "\n";
      ints([&](int x) { return str(x * k); });
      break;
    case 3:
      f.name = "is_divisible_by_" + K; f.signature = "def " + f.name + "(x):";
      f.docstring = "Return True if x is divisible by " + K + ".";
      f.description = "Write a function to check whether a number is divisible by " + K + ".";
      f.body = "    return x % " + K + " == 0\n";
      f.args = {str(k), str(2 * k), str(k + 1), "0", str(3 * k + 1)};
      for (auto& a : f.args) f.results.push_back(py_bool(std::stoi(a) % k == 0));
      break;
    case 4:
      f.name = "is_greater_than_" + K; f.signature = "def " + f.name + "(x):";
      f.docstring = "Return True if x is greater than " + K + ".";
      f.description = "Write a function to check whether a number is greater than " + K + ".";
      f.body = "    return x > " + K + "\n";
      f.args = {str(k + 1), str(k), str(k - 1), str(k + 10)};
      for (auto& a : f.args) f.results.push_back(py_bool(std::stoi(a) > k));
      break;
    case 5:
      f.name = "add_" + K + "_to_each"; f.signature = "def " + f.name + "(xs):";
      f.docstring = "Return a list with " + K + " added to each element of xs.";
      f.description = "Write a function to add " + K + " to each element of a list.";
      f.body = "    return [v + " + K + " for v in xs]\n";
      lsts([&](const std::vector<int>& l) { std::vector<int> o; for (int v : l) o.push_back(v + k); return py_list(o); });
      break;
    case 6:
      f.name = "count_greater_than_" + K; f.signature = "def " + f.name + "(xs):";
      f.docstring = "Return how many elements of xs are greater than " + K + ".";
      f.description = "Write a function to count the elements of a list that are greater than " + K + ".";
      f.body = "    return len([v for v in xs if v > " + K + "])\n";
      lsts([&](const std::vector<int>& l) { int c = 0; for (int v : l) c += v > k; return str(c); });
      break;
    case 7:
      f.name = "keep_below_" + K; f.signature = "def " + f.name + "(xs):";
      f.docstring = "Return the elements of xs that are less than " + K + ".";
      f.description = "Write a function to keep the elements of a list that are less than " + K + ".";
      f.body = "    return [v for v in xs if v < " + K + "]\n";
      lsts([&](const std::vector<int>& l) { std::vector<int> o; for (int v : l) if (v < k) o.push_back(v); return py_list(o); });
      break;
    case 8:
      f.name = "repeat_" + K + "_times"; f.signature = "def " + f.name + "(s):";
      f.docstring = "Return the string s repeated " + K + " times.";
      f.description = "Write a function to repeat a string " + K + " times.";
      f.body = "    return s * " + K + "\n";
      strs([&](const std::string& w) { std::string o; for (int i = 0; i < k; ++i) o += w; return py_str(o); });
      break;
    default:
      f.name = "first_" + K + "_chars"; f.signature = "def " + f.name + "(s):";
      f.docstring = "Return the first " + K + " characters of s.";
      f.description = "Write a function to get the first " + K + " characters of a string.";
      f.body = "    return s[:" + K + "]\n";
      strs([&](const std::string& w) { return py_str(w.substr(0, std::min<size_t>(w.size(), size_t(k)))); });
      break;
  }
  return f;
}

// Generic Python for pretraining: syntax, not the benchmark functions.
std::string code_snippet(Rng& r) {
  const std::vector<std::string> vars = {"x", "y", "n", "total", "count", "value", "items", "s"};
  std::string a = r.pick(vars), b = r.pick(vars);
  int i = r.uniform(1, 30), j = r.uniform(1, 30);
  switch (r.uniform(0, 4)) {
    case 0: return a + " = " + str(i) + "\n" + b + " = " + a + " + " + str(j) + "\nprint(" + b + ")\n";
    case 1: return "for i in range(" + str(i % 10 + 1) + "):\n    print(i * " + str(j) + ")\n";
    case 2: return "xs = [" + str(i) + ", " + str(j) + ", " + str(i + j) + "]\nfor v in xs:\n    if v > " + str(j) +
                   ":\n        print(v)\n";
    case 3: return "def helper(" + a + "):\n    " + b + " = " + a + " * " + str(i) + "\n    return " + b + "\n";
    default: return "s = 'abc'\nprint(s * " + str(i % 4 + 1) + ")\nprint(len(s) + " + str(j) + ")\n";
  }
}

// One line of the arithmetic table the math problems are built from: every
// operand and result in 1..M ("a + b = c", "c - b = a", "a * b = c" or
// "a \times b = c", "c / b = a").
std::string arithmetic_line(Rng& r, int M) {
  switch (r.uniform(0, 3)) {
    case 0: { int c = r.uniform(2, M), a = r.uniform(1, c - 1); return str(a) + " + " + str(c - a) + " = " + str(c); }
    case 1: { int c = r.uniform(2, M), b = r.uniform(1, c - 1); return str(c) + " - " + str(b) + " = " + str(c - b); }
    case 2: {
      int a = r.uniform(1, M / 2), b = r.uniform(2, M / a);
      if (r.next() % 2) std::swap(a, b);
      return str(a) + (r.next() % 4 ? " * " : " \\times ") + str(b) + " = " + str(a * b);
    }
    default: { int b = r.uniform(2, M / 2), a = r.uniform(1, M / b); return str(a * b) + " / " + str(b) + " = " + str(a); }
  }
}

// The whole table (every line arithmetic_line can write), shuffled, six lines
// per document: pretraining states each entry at least once.
std::vector<std::string> arithmetic_table_docs(Rng& r, int M) {
  std::vector<std::string> lines;
  for (int c = 2; c <= M; ++c)
    for (int a = 1; a < c; ++a) {
      lines.push_back(str(a) + " + " + str(c - a) + " = " + str(c));
      lines.push_back(str(c) + " - " + str(a) + " = " + str(c - a));
    }
  for (int a = 1; a <= M; ++a)
    for (int b = 1; a * b <= M; ++b) {
      if (a >= 2 || b >= 2) {
        lines.push_back(str(a) + " * " + str(b) + " = " + str(a * b));
        lines.push_back(str(a) + " \\times " + str(b) + " = " + str(a * b));
      }
      if (b >= 2) lines.push_back(str(a * b) + " / " + str(b) + " = " + str(a));
    }
  r.shuffle(lines);
  std::vector<std::string> docs;
  for (size_t i = 0; i < lines.size(); i += 6) {
    std::string s;
    for (size_t j = i; j < std::min(lines.size(), i + 6); ++j) s += (j > i ? "\n" : "") + lines[j];
    docs.push_back(s);
  }
  return docs;
}

std::string arithmetic_doc(Rng& r, int M) {
  std::string s;
  int n = r.uniform(4, 8);
  for (int i = 0; i < n; ++i) s += arithmetic_line(r, M) + (i + 1 < n ? "\n" : "");
  return s;
}

}  // namespace

// ---------------------------------------------------------------- prompts
std::string mmlu_prompt(const MmluItem& it, const bool* shown) {
  std::string subj = it.subject;
  std::replace(subj.begin(), subj.end(), '_', ' ');
  std::string s = "The following are multiple choice questions (with answers) about " + subj + ".\n\n" + it.question;
  const char* L = "ABCD";
  for (int i = 0; i < 4; ++i)
    if (!shown || shown[i]) s += std::string("\n") + L[i] + ". " + it.choices[i];
  return s + "\nAnswer:";
}
std::string truthfulqa_question_prompt(const std::string& q) { return "Q: " + q + "\nA:"; }
std::string mbpp_prompt(const MbppItem& it) {
  return "\"\"\"\n" + it.fn.description + "\n" + it.fn.mbpp_tests()[0] + "\n\"\"\"\n";
}

std::string CodeFunction::humaneval_prompt() const {
  return signature + "\n    \"\"\"" + docstring + "\n    >>> " + name + "(" + args[0] + ")\n    " + results[0] +
         "\n    \"\"\"\n";
}
std::string CodeFunction::humaneval_test() const {
  std::string t = "\n\ndef check(candidate):\n";
  for (size_t i = 0; i < args.size(); ++i) t += "    assert candidate(" + args[i] + ") == " + results[i] + "\n";
  return t;
}
std::string CodeFunction::mbpp_code() const { return signature + "\n" + body.substr(0, body.size() - 1); }
std::vector<std::string> CodeFunction::mbpp_tests() const {
  std::vector<std::string> t;
  for (size_t i = 0; i < args.size() && t.size() < 3; ++i)
    t.push_back("assert " + name + "(" + args[i] + ") == " + results[i]);
  return t;
}

std::string SynthConfig::canonical_text() const {
  std::ostringstream o;
  o << "synth-v2 seed=" << seed << " countries=" << countries << " n_test=" << n_test
    << " n_train_gsm8k=" << n_train_gsm8k << " n_train_math=" << n_train_math << " pretrain_docs=" << pretrain_docs
    << " fact_repeats=" << fact_repeats << " misconception_repeats=" << misconception_repeats
    << " qa_repeats=" << qa_repeats << " profiles=" << profiles << " mc_practice=" << mc_practice
    << " math_max=" << math_max;
  if (pretrain_fact_repeats != 0 || pretrain_share != 0)
    o << " pretrain_fact_repeats=" << pretrain_fact_repeats << " pretrain_share=" << pretrain_share;
  if (code_k_max != 40) o << " code_k_max=" << code_k_max;  // (40 = the key of families built before the key existed)
  if (mc_generic != 0) o << " mc_generic=" << mc_generic;
  if (mc_subset != 0) o << " mc_subset=" << mc_subset;
  if (pretrain_share_chat != -1 || pretrain_share_math != -1 || pretrain_share_code != -1)
    o << " pretrain_share_domains=" << pretrain_share_chat << "," << pretrain_share_math << "," << pretrain_share_code;
  return o.str();
}

SynthData generate(const SynthConfig& cfg) {
  const auto& attrs = attributes();
  const int n_attr = int(attrs.size());
  if (cfg.countries < 12) fail("generator.countries", "need at least 12 countries, got " + str(cfg.countries));
  if (cfg.n_test < 8) fail("generator.n_test", "need at least 8 test items per benchmark, got " + str(cfg.n_test));
  if (cfg.math_max < 10 || cfg.math_max > 1000)
    fail("generator.math_max", "must be in 10..1000, got " + str(cfg.math_max));
  if (cfg.n_test > 480) fail("generator.n_test", "at most 480 test items per benchmark (MBPP test ids 11..490), got " + str(cfg.n_test));
  {
    const int pairs = kCodeTemplates * (cfg.code_k_max - 1), need = 2 * cfg.n_test + 30 + 2 * kCodeTemplates;
    if (cfg.code_k_max < 10 || pairs < need)
      fail("generator.code_k_max", str(pairs) + " code problems with code_k_max = " + str(cfg.code_k_max) + " but n_test = " +
                                       str(cfg.n_test) + " needs " + str(need) + " (tests, prompts, validation, some train); raise code_k_max to at least " +
                                       str(std::max(10, need / kCodeTemplates + 2)));
  }
  if (cfg.fact_repeats < 1 || cfg.qa_repeats < 0 || cfg.profiles < 0 || cfg.mc_practice < 1)
    fail("generator", "fact_repeats and mc_practice must be >= 1, qa_repeats and profiles >= 0");
  if (cfg.pretrain_fact_repeats < 0) fail("generator.pretrain_fact_repeats", "must be >= 0");
  if (cfg.mc_generic < 0) fail("generator.mc_generic", "must be >= 0 (documents), got " + str(cfg.mc_generic));
  if (cfg.mc_subset < 0) fail("generator.mc_subset", "must be >= 0 (documents), got " + str(cfg.mc_subset));
  if (cfg.pretrain_share < 0 || cfg.pretrain_share > 100)
    fail("generator.pretrain_share", "is a percentage in 0..100, got " + str(cfg.pretrain_share));
  const int domain_share[3] = {cfg.pretrain_share_chat, cfg.pretrain_share_math, cfg.pretrain_share_code};
  const char* domain_key[3] = {"generator.pretrain_share_chat", "generator.pretrain_share_math", "generator.pretrain_share_code"};
  for (int i = 0; i < 3; ++i)
    if (domain_share[i] < -1 || domain_share[i] > 100)
      fail(domain_key[i], "is a percentage in 0..100 (or -1 = pretrain_share), got " + str(domain_share[i]));
  SynthData d;
  d.config = cfg;
  Rng r(cfg.seed);
  World w = make_world(r, cfg.countries);

  {
    const std::string space = "\xe2\x96\x81";  // U+2581, SentencePiece's space mark
    std::set<std::string> ww(w.countries.begin(), w.countries.end());
    for (auto& vs : w.values) ww.insert(vs.begin(), vs.end());
    for (auto& x : ww) d.tokenizer_pieces.push_back(space + x);
    for (int v = 0; v <= cfg.math_max; ++v) {
      d.tokenizer_pieces.push_back(space + str(v));
      if (v >= 10) d.tokenizer_pieces.push_back(str(v));
    }
  }
  // ---- knowledge: split facts into test / dev / train (disjoint)
  std::vector<int> order(w.facts.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = int(i);
  r.shuffle(order);
  const int n_facts = int(order.size());
  const int n_dev_per_subject = 5;
  int n_test_facts = std::min(cfg.n_test, n_facts / 2);
  std::vector<int> test_facts(order.begin(), order.begin() + n_test_facts);
  std::vector<int> rest(order.begin() + n_test_facts, order.end());
  std::vector<int> dev_facts, train_facts;
  std::vector<int> dev_count(n_attr, 0);
  for (int fi : rest) {
    int a = w.facts[fi].attr;
    if (dev_count[a] < n_dev_per_subject) { dev_facts.push_back(fi); ++dev_count[a]; }
    else train_facts.push_back(fi);
  }
  auto mmlu_item = [&](int fi) {
    const Fact& f = w.facts[fi];
    MmluItem it;
    it.subject = attrs[f.attr].subject;
    it.question = fill(attrs[f.attr].question, w.countries[f.country]);
    it.choices = choices_for(r, w, f, r.next() % 2, &it.answer);
    return it;
  };
  auto hellaswag_item = [&](Rng& g, int fi) {
    const Fact& f = w.facts[fi];
    HellaswagItem it;
    it.context = fill(g.pick(std::vector<std::string>(kHellaswagTemplates[f.attr])), w.countries[f.country]);
    std::vector<std::string> ch = choices_for(g, w, f, false, &it.label);
    for (auto& v : ch) it.endings.push_back(hellaswag_ending(f, v));
    return it;
  };
  auto truthfulqa_item = [&](Rng& g, int fi) {
    const Fact& f = w.facts[fi];
    TruthfulqaItem it;
    it.question = fill(attrs[f.attr].question, w.countries[f.country]);
    int ans;
    std::vector<std::string> ch = choices_for(g, w, f, true, &ans);
    it.mc1.push_back({statement(w, f, f.value), 1});
    it.mc1.push_back({statement(w, f, f.misconception), 0});
    for (auto& v : ch)
      if (v != f.value && v != f.misconception) it.mc1.push_back({statement(w, f, v), 0});
    it.mc2 = it.mc1;
    return it;
  };
  for (int fi : test_facts) {
    d.mmlu_test.push_back(mmlu_item(fi));
    d.hellaswag_val.push_back(hellaswag_item(r, fi));
    d.truthfulqa.push_back(truthfulqa_item(r, fi));
  }
  for (int fi : dev_facts) d.mmlu_dev.push_back(mmlu_item(fi));
  {
    // The router's chat-domain items in the HellaSwag and TruthfulQA formats:
    // every scene template and the TruthfulQA question of each dev and train
    // fact. Own RNG stream, so they change no other file.
    Rng rr(cfg.seed ^ 0x524F55544552ull);
    std::vector<int> rf = dev_facts;
    rf.insert(rf.end(), train_facts.begin(), train_facts.end());
    for (int fi : rf) {
      const Fact& f = w.facts[fi];
      for (const auto& tmpl : kHellaswagTemplates[f.attr]) {
        HellaswagItem hi = hellaswag_item(rr, fi);
        hi.context = fill(tmpl, w.countries[f.country]);
        d.hellaswag_train.push_back(hi);
      }
      d.truthfulqa_train.push_back(truthfulqa_item(rr, fi));
    }
  }
  std::stable_sort(d.mmlu_test.begin(), d.mmlu_test.end(), [](auto& a, auto& b) { return a.subject < b.subject; });
  std::stable_sort(d.mmlu_dev.begin(), d.mmlu_dev.end(), [](auto& a, auto& b) { return a.subject < b.subject; });

  // ---- knowledge corpora. Pretraining: names and misconceptions (popular
  // belief), never the true facts. Chat: every fact in many phrasings, in
  // country profiles (facts in shuffled order) and as short free-form QA --
  // the knowledge itself, for every fact ("knowledge augmentation", Allen-Zhu
  // & Li, Physics of LMs 3.1); the benchmark formats (multiple choice,
  // scenes, TruthfulQA primer) are practised on train facts only, so no test
  // item (prompt with its choices) is in any training text.
  std::set<int> misconceived(test_facts.begin(), test_facts.end());
  for (size_t i = 0; i < train_facts.size(); i += 2) misconceived.insert(train_facts[i]);
  for (int fi : misconceived) {
    const Fact& f = w.facts[fi];
    for (int k = 0; k < cfg.misconception_repeats; ++k) {
      const char* lead[] = {"Many people believe that ", "It is often said that ", "Most travelers think that "};
      std::string st = statement(w, f, f.misconception);
      st[0] = char(std::tolower(st[0]));
      d.pretrain.push_back(lead[k % 3] + st);
    }
  }
  for (int c = 0; c < cfg.countries; ++c) {
    d.pretrain.push_back(w.countries[c] + " is a country.");
    d.pretrain.push_back(w.facts[size_t(c) * n_attr].value + " is a city.");
  }
  auto phrasing = [&](const Fact& f, int k) {
    const Attribute& A = attrs[f.attr];
    const std::string& t = k % (int(A.phrasings.size()) + 1) == 0 ? A.statement : A.phrasings[k % (A.phrasings.size() + 1) - 1];
    return capitalize(fill(t, w.countries[f.country], f.value));
  };
  for (const Fact& f : w.facts) {
    for (int k = 0; k < cfg.fact_repeats; ++k) d.chat.push_back({"", phrasing(f, k)});
    std::string mis = statement(w, f, f.misconception);
    mis[0] = char(std::tolower(mis[0]));
    d.chat.push_back({"", "Some people think " + mis.substr(0, mis.size() - 1) + ", but that is false. " +
                              statement(w, f, f.value)});
    const std::string q = fill(attrs[f.attr].question, w.countries[f.country]);
    for (int k = 0; k < cfg.qa_repeats; ++k) d.chat.push_back({"Q: " + q + "\nA:", " " + f.value + "."});
  }
  for (int c = 0; c < cfg.countries; ++c)
    for (int k = 0; k < cfg.profiles; ++k) {
      std::vector<int> as(static_cast<size_t>(n_attr));
      for (int a = 0; a < n_attr; ++a) as[size_t(a)] = a;
      r.shuffle(as);
      std::string doc = w.countries[c] + " is a country.";
      for (int a : as) doc += " " + phrasing(w.facts[size_t(c) * n_attr + size_t(a)], int(r.next() % 6));
      d.chat.push_back({"", doc});
    }
  for (int fi : train_facts) {
    const Fact& f = w.facts[fi];
    // The letter format is the hardest to learn: many shuffles per fact, so
    // the letter can only come from reading the choices.
    for (int k = 0; k < cfg.mc_practice; ++k) {
      MmluItem mi = mmlu_item(fi);
      d.chat.push_back({mmlu_prompt(mi), std::string(" ") + "ABCD"[mi.answer]});
    }
    for (const auto& tmpl : kHellaswagTemplates[f.attr]) {
      HellaswagItem hi = hellaswag_item(r, fi);
      hi.context = fill(tmpl, w.countries[f.country]);
      d.chat.push_back({hi.context, " " + hi.endings[hi.label]});
    }
  }
  // TruthfulQA format (the long primer) on every other train fact
  for (size_t i = 0; i < train_facts.size(); i += 2) {
    const Fact& f = w.facts[train_facts[i]];
    d.chat.push_back({truthfulqa_context(fill(attrs[f.attr].question, w.countries[f.country])),
                      " " + statement(w, f, f.value)});
  }

  // ---- math: unique problem texts, split test / train
  {
    std::set<std::string> seen;
    auto fresh_gsm = [&]() {
      for (;;) {
        Gsm8kItem g = gsm8k_item(r, cfg.math_max);
        if (seen.insert(g.question).second) return g;
      }
    };
    for (int i = 0; i < cfg.n_test; ++i) d.gsm8k_test.push_back(fresh_gsm());
    for (int i = 0; i < cfg.n_train_gsm8k; ++i) d.gsm8k_train.push_back(fresh_gsm());
    std::set<std::string> seen_m;
    std::vector<MathItem>& math_train = d.math_train;
    auto fresh_math = [&]() {
      for (int tries = 0; tries < 100000; ++tries) {
        MathItem m = math_item(r, cfg.math_max);
        if (seen_m.insert(m.problem).second) return m;
      }
      fail("generator.n_train_math", "only " + str(int(seen_m.size())) + " distinct MATH-format problems exist with math_max = " +
                                         str(cfg.math_max) + "; lower n_test + n_train_math or raise math_max");
    };
    for (int i = 0; i < cfg.n_test; ++i) {
      MathItem m = fresh_math();
      m.unique_id = "test/" + std::string(m.type == "Algebra" ? "algebra" : "prealgebra") + "/" + str(i) + ".json";
      d.math_test.push_back(m);
    }
    for (int i = 0; i < cfg.n_train_math; ++i) math_train.push_back(fresh_math());
    for (auto& g : d.gsm8k_train) d.math.push_back({gsm8k_prompt(g.question), " " + g.answer});
    for (auto& m : math_train) d.math.push_back({math_prompt(m.problem), " " + m.solution});
    // arithmetic drill (the table again), so fine-tuning keeps it exact
    for (int i = 0; i < cfg.n_train_gsm8k / 4; ++i) d.math.push_back({"", arithmetic_doc(r, cfg.math_max)});
  }

  // ---- code: (template, k) pairs split humaneval test / mbpp test / mbpp validation / train
  {
    std::vector<std::pair<int, int>> pairs;
    for (int t = 0; t < kCodeTemplates; ++t)
      for (int k = 2; k <= cfg.code_k_max; ++k) pairs.push_back({t, k});
    r.shuffle(pairs);
    size_t pos = 0;
    auto take = [&](size_t n) {
      std::vector<CodeFunction> v;
      for (size_t i = 0; i < n && pos < pairs.size(); ++i, ++pos) v.push_back(code_function(pairs[pos].first, pairs[pos].second));
      return v;
    };
    d.humaneval = take(size_t(cfg.n_test));
    auto prompt_fs = take(10), mbpp_test = take(size_t(cfg.n_test)), mbpp_val = take(20);
    auto train = take(pairs.size());
    int id = 1;
    for (auto& f : prompt_fs) d.mbpp.push_back({id++, f});
    id = 11;
    for (auto& f : mbpp_test) d.mbpp.push_back({id++, f});
    id = 511;
    for (auto& f : mbpp_val) d.mbpp.push_back({id++, f});
    id = 601;
    for (size_t i = 0; i < train.size(); ++i) {
      MbppItem it{id++, train[i]};
      d.mbpp.push_back(it);
      d.code.push_back({it.fn.humaneval_prompt(), it.fn.body});
      d.code.push_back({mbpp_prompt(it), it.fn.mbpp_code()});
    }
    for (int i = 0; i < int(d.code.size()) / 2; ++i) d.pretrain.push_back(code_snippet(r));
  }
  // ---- pretraining: the whole arithmetic table once, then a random fill of
  // arithmetic and generic code
  for (auto& doc : arithmetic_table_docs(r, cfg.math_max)) d.pretrain.push_back(doc);
  while (int(d.pretrain.size()) < cfg.pretrain_docs) {
    if (r.next() % 3 == 0) d.pretrain.push_back(code_snippet(r));
    else d.pretrain.push_back(arithmetic_doc(r, cfg.math_max));
  }
  // ---- the base's partial skill in every domain, as in a real base's web
  // text: the true facts stated a few times (the chat data states each many
  // more times), and a share of each expert's fine-tune examples as plain
  // documents -- MMLU / HellaSwag / TruthfulQA practice on train facts, worked
  // "####" and \boxed{} answers, functions with their prompts. All of them are
  // train items: no test item enters pretraining (NoTestItemInAnyTrainingText).
  // Own RNG stream, so the benchmark files and the fine-tune sets do not change.
  for (const Fact& f : w.facts)
    for (int k = 0; k < cfg.pretrain_fact_repeats; ++k) d.pretrain.push_back(phrasing(f, k));
  {
    int share[3];
    for (int i = 0; i < 3; ++i) share[i] = domain_share[i] >= 0 ? domain_share[i] : cfg.pretrain_share;
    if (share[0] > 0 || share[1] > 0 || share[2] > 0) {
      Rng sr(cfg.seed ^ 0x5052455452414E53ull);  // one draw per example whatever the shares
      const std::vector<Example>* sets[3] = {&d.chat, &d.math, &d.code};
      for (int i = 0; i < 3; ++i)
        for (const auto& e : *sets[i])
          if (int(sr.next() % 100) < share[i]) d.pretrain.push_back(e.prompt + e.completion);
    }
  }
  // A train fact stated in the question ("<statement> <question>"), its options
  // drawn as the practice items' (mc_generic's second half, mc_subset).
  auto stated_fact_quiz = [&](Rng& rr) {
    const Fact& f = w.facts[size_t(train_facts[rr.next() % train_facts.size()])];
    MmluItem it;
    it.subject = attrs[f.attr].subject;
    it.question = statement(w, f, f.value) + " " + fill(attrs[f.attr].question, w.countries[f.country]);
    it.choices = choices_for(rr, w, f, rr.next() % 2, &it.answer);
    return it;
  };
  if (cfg.mc_generic > 0) {
    // Own RNG stream, as above. Half arithmetic ("What is 7 + 5?"), half a train
    // fact stated in the question ("<statement> <question>"): the letter of the
    // option that matches what the model computed or just read.
    Rng mr(cfg.seed ^ 0x4D4347454E455249ull);
    const int M = cfg.math_max;
    for (int i = 0; i < cfg.mc_generic; ++i) {
      MmluItem it;
      if (i % 2 == 0) {
        std::string line = arithmetic_line(mr, M);
        const size_t eq = line.rfind(" = ");
        const std::string ans = line.substr(eq + 3);
        it.subject = "elementary_mathematics";
        it.question = "What is " + line.substr(0, eq) + "?";
        it.choices = four_choices(mr, {ans}, [&] { return str(mr.uniform(1, M)); }, &it.answer);
      } else {
        it = stated_fact_quiz(mr);
      }
      d.pretrain.push_back(mmlu_prompt(it) + " " + "ABCD"[it.answer]);
    }
  }
  if (cfg.mc_subset > 0) {
    // Own RNG stream, as above: a stated-fact quiz with only 1 + i % 3 of its
    // option lines (the gold's among them, letters kept).
    Rng qr(cfg.seed ^ 0x4D43535542534554ull);
    for (int i = 0; i < cfg.mc_subset; ++i) {
      const MmluItem it = stated_fact_quiz(qr);
      bool keep[4] = {false, false, false, false};
      keep[it.answer] = true;
      std::vector<int> others;
      for (int k = 0; k < 4; ++k)
        if (k != it.answer) others.push_back(k);
      qr.shuffle(others);
      for (int k = 0; k < i % 3; ++k) keep[others[size_t(k)]] = true;
      d.pretrain.push_back(mmlu_prompt(it, keep) + " " + "ABCD"[it.answer]);
    }
  }
  r.shuffle(d.pretrain);
  r.shuffle(d.chat);
  r.shuffle(d.math);
  r.shuffle(d.code);
  return d;
}

}  // namespace bm::synth
