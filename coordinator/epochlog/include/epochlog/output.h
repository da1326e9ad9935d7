// Output of ics-epochlog's listings: where the bytes go (Sink: a string, a FILE*, or a pager when
// stdout is a terminal) and how rows are written (RowWriter: an aligned table, JSON lines, or CSV
// with RFC 4180 quoting). Rows stream: nothing is held beyond a small write buffer, so a listing
// of ten million events costs constant memory.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ics::epochlog {

enum class Format { kTable, kJson, kCsv };
enum class TimeStyle {
  kUtc,    // "2026-11-29T04:54:55.123Z" (the same text as clock::DtnTime::ToIso8601)
  kDtnMs,  // milliseconds since 2000-01-01T00:00:00Z, as an integer
};

struct OutputOptions {
  Format format = Format::kTable;
  TimeStyle time = TimeStyle::kUtc;
};

// UTC ISO-8601 text of a DTN time in milliseconds, appended to `out`. Fast path for years
// 0000..9999; anything else falls back to clock::DtnTime::ToIso8601 (expanded years). Never fails.
void AppendUtc(std::string& out, std::int64_t dtn_ms);
std::string FormatUtc(std::int64_t dtn_ms);

// Where text goes. Write returns false once the reader has gone away (a closed pipe, a pager
// the user quit): the caller stops producing output; that is not an error.
class Sink {
 public:
  virtual ~Sink() = default;
  virtual bool Write(std::string_view text) = 0;
  // Flushes and, for a pager, waits for the person to quit it.
  virtual void Finish() {}
};

class StringSink final : public Sink {
 public:
  bool Write(std::string_view text) override {
    text_.append(text);
    return true;
  }
  const std::string& text() const { return text_; }

 private:
  std::string text_;
};

// Writes to a FILE* it does not own (stdout, an opened file). Ignores SIGPIPE-style failures by
// returning false.
class FileSink final : public Sink {
 public:
  explicit FileSink(std::FILE* file) : file_(file) {}
  bool Write(std::string_view text) override;
  void Finish() override;

 private:
  std::FILE* file_;
  bool ok_ = true;
};

// Stdout, paged when it is a terminal and the output is long: output is held until it exceeds
// the terminal's height (rows from TIOCGWINSZ, else $LINES, else 24); if it ends before that it
// is written as is; otherwise $PAGER (or "less -FRX" when unset or empty) is started and
// everything goes through it. When stdout is not a terminal this is a plain FileSink(stdout).
// Ignores SIGPIPE for the process (a quit pager or a closed pipe ends the output, not the tool).
std::unique_ptr<Sink> MakeStdoutSink(bool allow_pager = true);

// A column of a listing. `kind` says how values print:
//   kInt/kText   as they are; kTime per OutputOptions::time; kDuration in milliseconds in JSON
//   and CSV, as clock::FormatDuration text in tables (whose header drops a "_ms" suffix). `width` is the table column's minimum
//   width (longer values push the rest of the line right; nothing is cut).
struct Column {
  enum class Kind { kInt, kText, kTime, kDuration };
  std::string_view name;  // JSON key and CSV header; upper-cased for the table header
  Kind kind = Kind::kText;
  int width = 0;
};

// One value. Text is viewed, not copied: it must live until Row() returns.
struct Field {
  enum class Type { kNull, kInt, kText } type = Type::kNull;
  std::int64_t number = 0;
  std::string_view text;
  static Field Null() { return {}; }
  static Field Int(std::int64_t v) { return {Type::kInt, v, {}}; }
  static Field Int(std::optional<std::int64_t> v) { return v ? Int(*v) : Null(); }
  static Field Text(std::string_view t) { return {Type::kText, 0, t}; }
};

// Writes rows of fixed columns to a sink in the chosen format. The table and CSV header is
// written before the first row (or by Finish when there were none, for CSV and tables). JSON
// strings are escaped, and bytes that are not UTF-8 become U+FFFD, so every line parses.
// Returns false from Row once the sink refused output.
class RowWriter {
 public:
  RowWriter(Sink& sink, OutputOptions options, std::vector<Column> columns);
  RowWriter(const RowWriter&) = delete;
  RowWriter& operator=(const RowWriter&) = delete;
  ~RowWriter();

  // REQUIRES: fields.size() == number of columns.
  bool Row(std::span<const Field> fields);
  // Writes pending text (and the header when no row came). Idempotent.
  bool Finish();
  std::uint64_t rows() const { return rows_; }

 private:
  void Header();
  bool FlushIfLarge();
  Sink& sink_;
  OutputOptions options_;
  std::vector<Column> columns_;
  std::string buffer_;
  bool header_done_ = false;
  bool ok_ = true;
  std::uint64_t rows_ = 0;
};

// Appends `text` as a JSON string literal (quotes included): escapes, and U+FFFD for bytes that
// are not valid UTF-8.
void AppendJsonString(std::string& out, std::string_view text);
// `text` with every byte sequence that is not valid UTF-8 replaced by U+FFFD.
std::string ValidUtf8(std::string_view text);
// Appends `text` as one CSV field (RFC 4180: quoted, quotes doubled, when it holds a comma, a
// quote, CR or LF).
void AppendCsvField(std::string& out, std::string_view text);

}  // namespace ics::epochlog
