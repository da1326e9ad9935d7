// Why hand-written formatting: a listing of ten million rows must take a few seconds, so rows are
// appended into one growing buffer (no per-field allocation, no iostreams) and handed to the sink
// in 256 KiB writes. Times are formatted by a civil-calendar computation with the day's date
// cached, since consecutive events mostly fall on the same day.
#include "epochlog/output.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "clock/time.h"

namespace ics::epochlog {
namespace {

constexpr std::size_t kFlushBytes = 256 * 1024;

// Days since 1970-01-01 -> civil date (H. Hinnant's algorithm), for any year in int range.
void CivilFromDays(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) {
  z += 719468;
  const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const auto doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  y = static_cast<std::int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = doy - (153 * mp + 2) / 5 + 1;
  m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2 ? 1 : 0;
}

void Put2(char* p, unsigned v) {
  p[0] = static_cast<char>('0' + v / 10);
  p[1] = static_cast<char>('0' + v % 10);
}

// Years 0000..9999 in unix milliseconds.
constexpr std::int64_t kFastMinUnixMs = -62'167'219'200'000;
constexpr std::int64_t kFastMaxUnixMs = 253'402'300'799'999;
constexpr std::int64_t kMsPerDay = 86'400'000;

struct DayCache {
  std::int64_t day = INT64_MIN;
  char date[11] = {};  // "YYYY-MM-DD"
};
thread_local DayCache day_cache;

std::string Upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

}  // namespace

void AppendUtc(std::string& out, std::int64_t dtn_ms) {
  if (dtn_ms > INT64_MAX - clock::kDtnEpochUnixMs || dtn_ms < INT64_MIN + clock::kDtnEpochUnixMs) {
    out += fmt::format("dtn:{}ms", dtn_ms);  // beyond any calendar: print it raw, never fail
    return;
  }
  const std::int64_t unix_ms = dtn_ms + clock::kDtnEpochUnixMs;
  if (unix_ms < kFastMinUnixMs || unix_ms > kFastMaxUnixMs) {
    out += clock::DtnTime::FromMillis(dtn_ms).ToIso8601();
    return;
  }
  std::int64_t day = unix_ms / kMsPerDay;
  std::int64_t rem = unix_ms % kMsPerDay;
  if (rem < 0) {
    rem += kMsPerDay;
    --day;
  }
  if (day != day_cache.day) {
    std::int64_t y = 0;
    unsigned m = 0, d = 0;
    CivilFromDays(day, y, m, d);
    const auto year = static_cast<unsigned>(y);
    Put2(day_cache.date, year / 100);
    Put2(day_cache.date + 2, year % 100);
    day_cache.date[4] = '-';
    Put2(day_cache.date + 5, m);
    day_cache.date[7] = '-';
    Put2(day_cache.date + 8, d);
    day_cache.day = day;
  }
  char text[24];
  std::memcpy(text, day_cache.date, 10);
  const auto r = static_cast<unsigned>(rem);
  const unsigned ms = r % 1000, s = r / 1000 % 60, min = r / 60'000 % 60, h = r / 3'600'000;
  text[10] = 'T';
  Put2(text + 11, h);
  text[13] = ':';
  Put2(text + 14, min);
  text[16] = ':';
  Put2(text + 17, s);
  text[19] = '.';
  text[20] = static_cast<char>('0' + ms / 100);
  Put2(text + 21, ms % 100);
  out.append(text, 23);
  out += 'Z';
}

std::string FormatUtc(std::int64_t dtn_ms) {
  std::string out;
  AppendUtc(out, dtn_ms);
  return out;
}

namespace {

// The length of the valid UTF-8 sequence starting at p[i] (a byte >= 0x80), or 0 if invalid:
// right length, continuation bytes, no overlong forms, no surrogates, at most U+10FFFF.
std::size_t Utf8Length(const unsigned char* p, std::size_t i, std::size_t n) {
  const unsigned char c = p[i];
  std::size_t len = 0;
  std::uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    len = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    cp = c & 0x07;
  }
  if (len == 0 || i + len > n) return 0;
  for (std::size_t k = 1; k < len; ++k) {
    if ((p[i + k] & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (p[i + k] & 0x3F);
  }
  if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;
  }
  return len;
}

}  // namespace

std::string ValidUtf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  for (std::size_t i = 0; i < text.size();) {
    if (p[i] < 0x80) {
      out += text[i++];
      continue;
    }
    const std::size_t len = Utf8Length(p, i, text.size());
    if (len == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(text.data() + i, len);
      i += len;
    }
  }
  return out;
}

void AppendJsonString(std::string& out, std::string_view text) {
  out += '"';
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = p[i];
    if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
      // Copy the run of plain ASCII in one go.
      std::size_t j = i + 1;
      while (j < n && p[j] >= 0x20 && p[j] < 0x80 && p[j] != '"' && p[j] != '\\') ++j;
      out.append(text.data() + i, j - i);
      i = j;
      continue;
    }
    if (c == '"') {
      out += "\\\"";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      const std::size_t len = Utf8Length(p, i, n);
      const bool valid = len != 0;
      if (valid) {
        out.append(text.data() + i, len);
        i += len;
      } else {
        out += "\xEF\xBF\xBD";
        ++i;
      }
      continue;
    }
    ++i;
  }
  out += '"';
}

void AppendCsvField(std::string& out, std::string_view text) {
  static constexpr auto kSpecial = [] {
    std::array<bool, 256> table{};
    table[','] = table['"'] = table['\r'] = table['\n'] = true;
    return table;
  }();
  bool plain = true;
  for (char c : text) {
    if (kSpecial[static_cast<unsigned char>(c)]) {
      plain = false;
      break;
    }
  }
  if (plain) {
    out.append(text);
    return;
  }
  out += '"';
  for (char c : text) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
}

// --- sinks -----------------------------------------------------------------------------------

bool FileSink::Write(std::string_view text) {
  if (!ok_) return false;
  if (!text.empty() && std::fwrite(text.data(), 1, text.size(), file_) != text.size()) ok_ = false;
  return ok_;
}

void FileSink::Finish() {
  if (ok_ && std::fflush(file_) != 0) ok_ = false;
}

namespace {

class PagerSink final : public Sink {
 public:
  PagerSink(std::size_t max_lines, std::string command) : max_lines_(max_lines), command_(std::move(command)) {}
  ~PagerSink() override { Finish(); }

  bool Write(std::string_view text) override {
    if (!ok_) return false;
    if (pager_ != nullptr) return ToPager(text);
    if (direct_) {
      held_.append(text);
      return ToStdout();
    }
    held_.append(text);
    lines_ += static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    if (lines_ < max_lines_) return true;
    pager_ = ::popen(command_.c_str(), "w");
    if (pager_ == nullptr) {  // no pager: write it plainly
      direct_ = true;
      return ToStdout();
    }
    return ToPager(std::exchange(held_, std::string()));
  }

  void Finish() override {
    if (finished_) return;
    finished_ = true;
    if (pager_ != nullptr) {
      ::pclose(pager_);  // waits until the person quits the pager
      pager_ = nullptr;
    } else {
      ToStdout();
      std::fflush(stdout);
    }
  }

 private:
  bool ToPager(std::string_view text) {
    if (std::fwrite(text.data(), 1, text.size(), pager_) != text.size()) ok_ = false;
    return ok_;
  }
  bool ToStdout() {
    if (!held_.empty() && std::fwrite(held_.data(), 1, held_.size(), stdout) != held_.size()) ok_ = false;
    held_.clear();
    return ok_;
  }

  std::size_t max_lines_;
  std::string command_;
  std::string held_;
  std::size_t lines_ = 0;
  std::FILE* pager_ = nullptr;
  bool direct_ = false;
  bool ok_ = true;
  bool finished_ = false;
};

}  // namespace

std::unique_ptr<Sink> MakeStdoutSink(bool allow_pager) {
  std::signal(SIGPIPE, SIG_IGN);
  if (!allow_pager || ::isatty(STDOUT_FILENO) == 0) return std::make_unique<FileSink>(stdout);
  std::size_t rows = 24;
  winsize ws{};
  if (::ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
    rows = ws.ws_row;
  } else if (const char* lines = std::getenv("LINES"); lines != nullptr && std::atoi(lines) > 0) {
    rows = static_cast<std::size_t>(std::atoi(lines));
  }
  const char* pager = std::getenv("PAGER");
  std::string command = pager != nullptr && *pager != '\0' ? pager : "less -FRX";
  return std::make_unique<PagerSink>(rows > 1 ? rows - 1 : 1, std::move(command));
}

// --- rows ------------------------------------------------------------------------------------

RowWriter::RowWriter(Sink& sink, OutputOptions options, std::vector<Column> columns)
    : sink_(sink), options_(options), columns_(std::move(columns)) {
  buffer_.reserve(kFlushBytes + 4096);
}

RowWriter::~RowWriter() { Finish(); }

void RowWriter::Header() {
  header_done_ = true;
  if (options_.format == Format::kJson) return;
  for (std::size_t i = 0; i < columns_.size(); ++i) {
    const Column& c = columns_[i];
    if (options_.format == Format::kCsv) {
      if (i > 0) buffer_ += ',';
      AppendCsvField(buffer_, c.name);
    } else {
      if (i > 0) buffer_ += "  ";
      std::string name = Upper(c.name);
      if (c.kind == Column::Kind::kDuration && name.ends_with("_MS")) name.resize(name.size() - 3);
      buffer_ += name;
      if (i + 1 < columns_.size() && static_cast<int>(name.size()) < c.width) {
        buffer_.append(static_cast<std::size_t>(c.width) - name.size(), ' ');
      }
    }
  }
  buffer_ += '\n';
}

bool RowWriter::Row(std::span<const Field> fields) {
  if (!ok_) return false;
  if (fields.size() != columns_.size()) {
    std::fprintf(stderr, "RowWriter: %zu fields for %zu columns\n", fields.size(), columns_.size());
    std::abort();
  }
  if (!header_done_) Header();
  ++rows_;
  const Format format = options_.format;
  if (format == Format::kJson) buffer_ += '{';
  for (std::size_t i = 0; i < fields.size(); ++i) {
    const Column& c = columns_[i];
    const Field& f = fields[i];
    if (format == Format::kJson) {
      if (i > 0) buffer_ += ',';
      buffer_ += '"';
      buffer_ += c.name;
      buffer_ += "\":";
    } else if (i > 0) {
      buffer_ += format == Format::kCsv ? "," : "  ";
    }
    const std::size_t value_start = buffer_.size();
    if (f.type == Field::Type::kNull) {
      if (format == Format::kJson) buffer_ += "null";
      if (format == Format::kTable) buffer_ += '-';
    } else if (f.type == Field::Type::kText) {
      if (format == Format::kJson) {
        AppendJsonString(buffer_, f.text);
      } else if (format == Format::kCsv) {
        AppendCsvField(buffer_, f.text);
      } else {
        // A table row is one line: control characters would break it.
        for (char ch : f.text) buffer_ += (ch == '\n' || ch == '\r' || ch == '\t') ? ' ' : ch;
      }
    } else if (c.kind == Column::Kind::kTime && options_.time == TimeStyle::kUtc) {
      if (format == Format::kJson) buffer_ += '"';
      AppendUtc(buffer_, f.number);
      if (format == Format::kJson) buffer_ += '"';
    } else if (c.kind == Column::Kind::kDuration && format == Format::kTable) {
      buffer_ += clock::FormatDuration(clock::Duration(f.number));
    } else {
      fmt::format_to(std::back_inserter(buffer_), "{}", f.number);
    }
    if (format == Format::kTable && i + 1 < fields.size()) {
      const std::size_t used = buffer_.size() - value_start;
      if (static_cast<int>(used) < c.width) buffer_.append(static_cast<std::size_t>(c.width) - used, ' ');
    }
  }
  if (format == Format::kJson) buffer_ += '}';
  buffer_ += '\n';
  return FlushIfLarge();
}

bool RowWriter::FlushIfLarge() {
  if (buffer_.size() < kFlushBytes) return ok_;
  ok_ = sink_.Write(buffer_) && ok_;
  buffer_.clear();
  return ok_;
}

bool RowWriter::Finish() {
  if (!header_done_ && options_.format != Format::kJson) Header();
  header_done_ = true;
  if (!buffer_.empty()) {
    if (ok_) ok_ = sink_.Write(buffer_);
    buffer_.clear();
  }
  return ok_;
}

}  // namespace ics::epochlog
