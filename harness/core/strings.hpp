// String helpers, one home for every library (Python's str methods where named).
#pragma once
#include <string>
#include <vector>

namespace bm {

std::string trim(const std::string& s);  // Python str.strip() for ASCII whitespace
bool starts_with(const std::string& s, const std::string& p);
bool ends_with(const std::string& s, const std::string& p);
std::string replace_all(std::string s, const std::string& from, const std::string& to);
std::vector<std::string> split(const std::string& s, const std::string& sep);  // Python str.split(sep)
std::string join(const std::vector<std::string>& v, const std::string& sep = ", ");
std::string latex_escape(const std::string& s);  // \ before _ % & # $ (table cells)
std::string csv_field(const std::string& s);     // RFC 4180 quoting when the field needs it

}  // namespace bm
