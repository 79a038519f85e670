#include "tasks/math/math_equiv.hpp"

#include <vector>

#include "tasks/common/io.hpp"

namespace bm {

namespace {
// UTF-8 code point helpers: Python indexes strings by code point.
size_t cp_len(const std::string& s, size_t pos) {
  unsigned char c = s[pos];
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
  return std::min(n, s.size() - pos);
}
std::string first_cp(const std::string& s) { return s.empty() ? "" : s.substr(0, cp_len(s, 0)); }
[[noreturn]] void py_raise() { throw MathNormalizeError{}; }

std::string remove_right_units(const std::string& s) {
  if (s.find("\\text{ ") != std::string::npos) {
    auto sp = split(s, "\\text{ ");
    if (sp.size() != 2) py_raise();
    return sp[0];
  }
  return s;
}

std::string fix_sqrt(const std::string& s) {
  if (s.find("\\sqrt") == std::string::npos) return s;
  auto sp = split(s, "\\sqrt");
  std::string out = sp[0];
  for (size_t i = 1; i < sp.size(); ++i) {
    const std::string& part = sp[i];
    if (part.empty()) py_raise();  // IndexError
    if (part[0] != '{') {
      std::string a = first_cp(part);
      out += "\\sqrt{" + a + "}" + part.substr(a.size());
    } else {
      out += "\\sqrt" + part;
    }
  }
  return out;
}

std::string fix_fracs(const std::string& s) {
  auto subs = split(s, "\\frac");
  std::string out = subs[0];
  for (size_t i = 1; i < subs.size(); ++i) {
    const std::string& sub = subs[i];
    out += "\\frac";
    if (sub.empty()) py_raise();  // IndexError on substr[0]
    if (sub[0] == '{') {
      out += sub;
      continue;
    }
    if (utf8_length(sub) < 2) return s;
    std::string a = first_cp(sub);
    std::string rest = sub.substr(a.size());
    std::string b = first_cp(rest);
    std::string post = rest.substr(b.size());
    if (b != "{")
      out += "{" + a + "}{" + b + "}" + post;
    else
      out += "{" + a + "}" + b + post;
  }
  return out;
}

// Python int(): optional surrounding whitespace, sign, digits with single
// underscores between them. Returns false where int() raises ValueError.
bool py_int_ok(const std::string& t) {
  std::string s = trim(t);
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i >= s.size()) return false;
  bool prev_digit = false;
  for (; i < s.size(); ++i) {
    if (s[i] >= '0' && s[i] <= '9') prev_digit = true;
    else if (s[i] == '_' && prev_digit && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '9') prev_digit = false;
    else return false;
  }
  return true;
}
// str(int(s)) == s
bool py_int_canonical(const std::string& s) {
  size_t i = s[0] == '-' ? 1 : 0;
  if (i >= s.size()) return false;
  for (size_t k = i; k < s.size(); ++k)
    if (s[k] < '0' || s[k] > '9') return false;
  if (s[i] == '0') return s.size() - i == 1 && i == 0;  // "0" ok, "-0" / "01" not
  return true;
}

std::string fix_a_slash_b(const std::string& s) {
  auto sp = split(s, "/");
  if (sp.size() != 2) return s;
  if (!py_int_ok(sp[0]) || !py_int_ok(sp[1])) py_raise();  // ValueError propagates
  if (!py_int_canonical(sp[0]) || !py_int_canonical(sp[1])) return s;  // AssertionError caught
  return "\\frac{" + sp[0] + "}{" + sp[1] + "}";
}
}  // namespace

std::optional<std::string> last_boxed_only_string(const std::string& s) {
  size_t idx = s.rfind("\\boxed");
  if (s.find("\\boxed ") != std::string::npos) {
    auto parts = split(s, "\\boxed ");
    return "\\boxed " + split(parts.back(), "$")[0];
  }
  if (idx == std::string::npos) {
    idx = s.rfind("\\fbox");
    if (idx == std::string::npos) return std::nullopt;
  }
  int open = 0;
  for (size_t i = idx; i < s.size(); ++i) {
    if (s[i] == '{') ++open;
    if (s[i] == '}') {
      --open;
      if (open == 0) return s.substr(idx, i - idx + 1);
    }
  }
  return std::nullopt;
}

std::optional<std::string> remove_boxed(const std::string& s) {
  if (s.find("\\boxed ") != std::string::npos) {
    if (!starts_with(s, "\\boxed ")) return std::nullopt;
    return s.substr(7);
  }
  if (!starts_with(s, "\\boxed{") || s.back() != '}') return std::nullopt;
  return s.substr(7, s.size() - 8);
}

std::string math_strip_string(const std::string& in) {
  std::string s = replace_all(in, "\n", "");
  s = replace_all(s, "\\!", "");
  s = replace_all(s, "\\\\", "\\");
  s = replace_all(s, "tfrac", "frac");
  s = replace_all(s, "dfrac", "frac");
  s = replace_all(s, "\\left", "");
  s = replace_all(s, "\\right", "");
  s = replace_all(s, "^{\\circ}", "");
  s = replace_all(s, "^\\circ", "");
  s = replace_all(s, "\\$", "");
  s = remove_right_units(s);
  s = replace_all(s, "\\%", "");
  s = replace_all(s, " .", " 0.");
  s = replace_all(s, "{.", "{0.");
  if (s.empty()) return s;
  if (s[0] == '.') s = "0" + s;
  auto eq = split(s, "=");
  if (eq.size() == 2 && utf8_length(eq[0]) <= 2) s = eq[1];
  s = fix_sqrt(s);
  s = replace_all(s, " ", "");
  s = fix_fracs(s);
  if (s == "0.5") s = "\\frac{1}{2}";
  s = fix_a_slash_b(s);
  return s;
}

bool math_is_equiv(const std::string& a, const std::string& b) {
  try {
    return math_strip_string(a) == math_strip_string(b);
  } catch (const MathNormalizeError&) {
    return a == b;
  }
}

std::string math_extract_answer(const std::string& out) {
  if (auto b = last_boxed_only_string(out)) {
    if (auto r = remove_boxed(*b)) return *r;
    if (starts_with(*b, "\\fbox{") && b->back() == '}') return b->substr(6, b->size() - 7);
  }
  size_t f = out.rfind("The answer is");
  if (f != std::string::npos) {
    std::string t = trim(out.substr(f + 13));
    if (starts_with(t, ":")) t = trim(t.substr(1));
    size_t nl = t.find('\n');
    if (nl != std::string::npos) t = trim(t.substr(0, nl));
    if (ends_with(t, ".")) t = trim(t.substr(0, t.size() - 1));
    if (t.size() >= 2 && t.front() == '$' && t.back() == '$') t = trim(t.substr(1, t.size() - 2));
    if (!t.empty()) return t;
  }
  std::vector<size_t> dollars;
  std::string o = replace_all(out, "$$", "$");
  for (size_t i = 0; i < o.size(); ++i)
    if (o[i] == '$' && (i == 0 || o[i - 1] != '\\')) dollars.push_back(i);
  if (dollars.size() >= 2) {
    size_t a = dollars[dollars.size() - 2], b = dollars.back();
    return trim(o.substr(a + 1, b - a - 1));
  }
  return trim(out);
}

std::string math_gold_answer(const std::string& solution) {
  auto b = last_boxed_only_string(solution);
  if (!b) return "";
  auto r = remove_boxed(*b);
  return r ? *r : "";
}

}  // namespace bm
