#include "tasks/common/io.hpp"

#include <zlib.h>

#include <sys/stat.h>

#include "harness/core/error.hpp"
#include "harness/core/fileio.hpp"

namespace bm {

const char* const kDataFetchHint =
    "run `bitmerge data fetch --data-dir DIR` or point --data-dir / $BITMERGE_DATA_DIR at a directory holding it";

std::string require_data_file(const std::string& data_dir, const std::string& rel, const std::string& task,
                              const std::string& source) {
  std::string p = data_dir.empty() ? rel : data_dir + "/" + rel;
  struct stat st {};
  if (stat(p.c_str(), &st) != 0)
    fail(p, "missing " + task + " data file (from " + source + "); " + kDataFetchHint);
  return p;
}

std::string read_maybe_gz(const std::string& path) {
  std::string raw = read_text_file(path);
  bool gz = raw.size() >= 2 && static_cast<unsigned char>(raw[0]) == 0x1f && static_cast<unsigned char>(raw[1]) == 0x8b;
  if (!gz) {
    if (ends_with(path, ".gz")) fail(path, "not a gzip file although its name ends in .gz; re-fetch it");
    return raw;
  }
  z_stream zs{};
  if (inflateInit2(&zs, 15 + 32) != Z_OK) fail(path, "cannot initialise zlib");
  std::string out;
  zs.next_in = reinterpret_cast<Bytef*>(raw.data());
  zs.avail_in = static_cast<uInt>(raw.size());
  char buf[1 << 16];
  int rc = Z_OK;
  while (true) {
    zs.next_out = reinterpret_cast<Bytef*>(buf);
    zs.avail_out = sizeof(buf);
    rc = inflate(&zs, Z_NO_FLUSH);
    out.append(buf, sizeof(buf) - zs.avail_out);
    if (rc == Z_STREAM_END) {
      if (zs.avail_in == 0) break;
      inflateReset(&zs);  // concatenated gzip members
      continue;
    }
    if (rc != Z_OK) {
      inflateEnd(&zs);
      fail(path, "corrupt gzip data (zlib error " + std::to_string(rc) + "); re-fetch the file");
    }
    if (zs.avail_in == 0 && zs.avail_out != 0) {
      inflateEnd(&zs);
      fail(path, "truncated gzip data; re-fetch the file");
    }
  }
  inflateEnd(&zs);
  return out;
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) {
      out.push_back(text.substr(pos));
      break;
    }
    out.push_back(text.substr(pos, nl - pos));
    pos = nl + 1;
  }
  return out;
}

void for_each_jsonl(const std::string& path,
                    const std::function<void(const nlohmann::ordered_json&, int64_t line)>& fn) {
  std::string text = read_maybe_gz(path);
  auto lines = split_lines(text);
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    nlohmann::ordered_json j;
    try {
      j = nlohmann::ordered_json::parse(lines[i]);
    } catch (const nlohmann::json::exception& e) {
      fail(path + ":" + std::to_string(i + 1), std::string("malformed JSON line (") + e.what() + "); re-fetch the file");
    }
    if (!j.is_object()) fail(path + ":" + std::to_string(i + 1), "expected a JSON object per line; re-fetch the file");
    fn(j, static_cast<int64_t>(i + 1));
  }
}

std::vector<CsvRow> parse_csv(const std::string& text, const std::string& path) {
  std::vector<CsvRow> rows;
  size_t i = 0, n = text.size();
  int64_t line = 1;
  if (n >= 3 && text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // BOM
  while (i < n) {
    CsvRow row;
    row.line = line;
    std::string field;
    bool in_quotes = false, quoted = false, row_done = false;
    while (i < n && !row_done) {
      char c = text[i];
      if (in_quotes) {
        if (c == '"') {
          if (i + 1 < n && text[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          in_quotes = false;
          ++i;
          continue;
        }
        if (c == '\n') ++line;
        field += c;
        ++i;
        continue;
      }
      if (c == '"') {
        if (!field.empty() || quoted)
          fail(path + ":" + std::to_string(line), "malformed CSV: stray quote inside an unquoted field");
        in_quotes = quoted = true;
        ++i;
      } else if (c == ',') {
        row.fields.push_back(std::move(field));
        field.clear();
        quoted = false;
        ++i;
      } else if (c == '\r' && i + 1 < n && text[i + 1] == '\n') {
        i += 2, ++line, row_done = true;
      } else if (c == '\n') {
        ++i, ++line, row_done = true;
      } else {
        if (quoted) fail(path + ":" + std::to_string(line), "malformed CSV: text after a closing quote");
        field += c;
        ++i;
      }
    }
    if (in_quotes) fail(path + ":" + std::to_string(row.line), "malformed CSV: unterminated quoted field");
    row.fields.push_back(std::move(field));
    if (!(row.fields.size() == 1 && row.fields[0].empty() && !quoted)) rows.push_back(std::move(row));
  }
  return rows;
}

const nlohmann::ordered_json& RecordRef::at(const char* key) const {
  auto it = j.find(key);
  if (it == j.end()) bad(std::string("missing field '") + key + "'");
  return *it;
}
std::string RecordRef::str(const char* key) const {
  const auto& v = at(key);
  if (!v.is_string()) bad(std::string("field '") + key + "' is not a string");
  return v.get<std::string>();
}
int64_t RecordRef::integer(const char* key) const {
  const auto& v = at(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_string()) {
    try {
      size_t used = 0;
      int64_t x = std::stoll(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size()) return x;
    } catch (...) {
    }
  }
  bad(std::string("field '") + key + "' is not an integer");
}
void RecordRef::bad(const std::string& what) const {
  fail(path + (line > 0 ? ":" + std::to_string(line) : std::string()), "malformed record: " + what + "; re-fetch the file");
}

size_t utf8_length(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s)
    if ((c & 0xC0) != 0x80) ++n;
  return n;
}

}  // namespace bm
