// Reading benchmark data files: plain or gzipped text, JSONL with line
// numbers, RFC-4180 CSV, and the "missing data file" error every loader uses.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "harness/core/strings.hpp"

namespace bm {

// Where the data comes from, for error messages.
extern const char* const kDataFetchHint;

// data_dir + "/" + rel; throws bm::Error naming the expected path, the
// benchmark and `bitmerge data fetch` when the file is missing.
std::string require_data_file(const std::string& data_dir, const std::string& rel, const std::string& task,
                              const std::string& source);

// Whole file; transparently gunzips when the name ends in ".gz" or the file
// starts with the gzip magic. Throws bm::Error naming the path.
std::string read_maybe_gz(const std::string& path);

// Splits on '\n' (a trailing '\r' is kept; callers decide). A final empty
// line after the last '\n' is dropped.
std::vector<std::string> split_lines(const std::string& text);

// Calls fn(json, line_number) for every non-blank line; a line that is not
// valid JSON throws bm::Error "<path>:<line>: ...". Keys keep file order.
void for_each_jsonl(const std::string& path,
                    const std::function<void(const nlohmann::ordered_json&, int64_t line)>& fn);

// Parses RFC-4180 CSV (quoted fields, "" escapes, embedded newlines, CRLF).
// Returns rows of fields and the 1-based line each row starts on.
struct CsvRow {
  std::vector<std::string> fields;
  int64_t line = 0;
};
std::vector<CsvRow> parse_csv(const std::string& text, const std::string& path_for_errors);

// Typed access to a JSON record with errors "<path>:<line>: field 'x' ...".
struct RecordRef {
  const nlohmann::ordered_json& j;
  const std::string& path;
  int64_t line;
  const nlohmann::ordered_json& at(const char* key) const;
  std::string str(const char* key) const;
  int64_t integer(const char* key) const;
  [[noreturn]] void bad(const std::string& what) const;
};

// Number of Unicode code points in UTF-8 text (Python's len()).
size_t utf8_length(const std::string& s);

// trim, starts_with, ends_with, replace_all, split, join: harness/core/strings.hpp

}  // namespace bm
