// DTN time <-> ISO-8601 text, and durations <-> human text.
//
// The calendar arithmetic is the proleptic Gregorian days-from-civil / civil-from-days
// conversion done by hand on int64 (std::chrono::year is limited to +-32767, and DtnTime::Max()
// lies some 73 million years out, which must still print without overflow).
#include "clock/time.h"

#include <fmt/format.h>

#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>

#include "int128.h"

namespace ics::clock {
namespace {

constexpr std::int64_t kMsPerSecond = 1000;
constexpr std::int64_t kMsPerMinute = 60 * kMsPerSecond;
constexpr std::int64_t kMsPerHour = 60 * kMsPerMinute;
constexpr std::int64_t kMsPerDay = 24 * kMsPerHour;
// Days from 0000-03-01 (the start of a 400-year era in the algorithm below) to 1970-01-01.
constexpr std::int64_t kUnixEpochDayOffset = 719468;
// DtnTime 0 is 2000-01-01, 10957 days after the Unix epoch.
constexpr std::int64_t kDtnEpochUnixDays = kDtnEpochUnixMs / kMsPerDay;
// Years accepted by the parser: enough for DtnTime::Max() and its mirror, well inside int64 ms.
constexpr std::int64_t kYearLimit = 100'000'000;
// Durations above this are refused so that DtnTime + Duration cannot overflow (see DtnTime::Max).
constexpr std::int64_t kDurationLimitMs = std::numeric_limits<std::int64_t>::max() / 4;

std::int64_t FloorDiv(std::int64_t a, std::int64_t b) {
  std::int64_t q = a / b;
  if ((a % b != 0) && ((a < 0) != (b < 0))) --q;
  return q;
}

// Days since 1970-01-01 of a proleptic Gregorian date. REQUIRES: 1 <= m <= 12, 1 <= d <= 31.
std::int64_t DaysFromCivil(std::int64_t y, int m, int d) {
  y -= m <= 2 ? 1 : 0;  // count years from March so the leap day is the last day of the year
  const std::int64_t era = FloorDiv(y, 400);
  const std::int64_t yoe = y - era * 400;                                    // [0, 399]
  const std::int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;  // [0, 365]
  const std::int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;            // [0, 146096]
  return era * 146097 + doe - kUnixEpochDayOffset;
}

struct Civil {
  std::int64_t year;
  int month;
  int day;
};

Civil CivilFromDays(std::int64_t z) {
  z += kUnixEpochDayOffset;
  const std::int64_t era = FloorDiv(z, 146097);
  const std::int64_t doe = z - era * 146097;                                       // [0, 146096]
  const std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
  const std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
  const std::int64_t mp = (5 * doy + 2) / 153;                                     // [0, 11]
  const int day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  const int month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  return Civil{yoe + era * 400 + (month <= 2 ? 1 : 0), month, day};
}

bool IsLeap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

int DaysInMonth(std::int64_t y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m - 1];
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// A cursor over ISO-8601 text that produces errors naming the text and the position.
class IsoScanner {
 public:
  explicit IsoScanner(std::string_view text) : text_(text) {}

  bool AtEnd() const { return pos_ == text_.size(); }
  char Peek() const { return AtEnd() ? '\0' : text_[pos_]; }
  std::size_t pos() const { return pos_; }
  void Skip() { ++pos_; }

  std::string Error(std::string_view what) const { return ErrorAt(pos_, what); }
  std::string ErrorAt(std::size_t pos, std::string_view what) const {
    const std::string found = pos < text_.size() ? fmt::format("'{}'", text_[pos]) : "end of text";
    return fmt::format("invalid ISO-8601 time \"{}\": {} at position {} (found {})", text_, what, pos, found);
  }

  // Exactly `count` digits.
  std::expected<int, std::string> Digits(int count, std::string_view what) {
    int value = 0;
    for (int i = 0; i < count; ++i) {
      if (!IsDigit(Peek()))
        return std::unexpected(Error(fmt::format("expected {} digits of the {}", count, what)));
      value = value * 10 + (Peek() - '0');
      Skip();
    }
    return value;
  }

  std::expected<void, std::string> Expect(char c, std::string_view what) {
    if (Peek() != c) return std::unexpected(Error(fmt::format("expected '{}' {}", c, what)));
    Skip();
    return {};
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

// Milliseconds of a seconds fraction ".123456": truncated to the millisecond (DTN time resolution).
std::expected<int, std::string> Fraction(IsoScanner& s) {
  s.Skip();  // '.' or ','
  if (!IsDigit(s.Peek())) return std::unexpected(s.Error("expected digits after the decimal point"));
  int ms = 0;
  int digits = 0;
  while (IsDigit(s.Peek())) {
    if (digits >= 9) return std::unexpected(s.Error("more than 9 fractional digits"));
    if (digits < 3) ms = ms * 10 + (s.Peek() - '0');
    ++digits;
    s.Skip();
  }
  for (int i = digits; i < 3; ++i) ms *= 10;
  return ms;
}

// "Z", "+hh:mm", "-hh:mm", "+hhmm" or "+hh": the offset of local time from UTC, in ms.
std::expected<std::int64_t, std::string> Offset(IsoScanner& s) {
  const char c = s.Peek();
  if (c == 'Z' || c == 'z') {
    s.Skip();
    return 0;
  }
  const std::int64_t sign = c == '-' ? -1 : 1;
  s.Skip();
  auto hh = s.Digits(2, "offset hours");
  if (!hh) return std::unexpected(hh.error());
  int mm = 0;
  if (s.Peek() == ':' || IsDigit(s.Peek())) {
    if (s.Peek() == ':') s.Skip();
    auto m = s.Digits(2, "offset minutes");
    if (!m) return std::unexpected(m.error());
    mm = *m;
  }
  if (*hh > 23 || mm > 59) return std::unexpected(s.Error("offset out of range"));
  return sign * (*hh * kMsPerHour + mm * kMsPerMinute);
}

// Milliseconds of one "<number><unit>" component, exactly; nullopt when not a whole number of
// milliseconds, and kDurationLimitMs + 1 when above the limit (the caller reports the overflow).
std::optional<std::int64_t> ComponentMs(std::int64_t whole, std::int64_t frac, std::int64_t frac_scale,
                                        std::int64_t unit_ms) {
  // whole <= 10^15 and unit_ms <= 8.64e7 keep this inside int128 comfortably.
  const Int128 num = static_cast<Int128>(whole) * frac_scale * unit_ms + static_cast<Int128>(frac) * unit_ms;
  if (num % frac_scale != 0) return std::nullopt;
  const Int128 ms = num / frac_scale;
  if (ms > kDurationLimitMs) return kDurationLimitMs + 1;
  return static_cast<std::int64_t>(ms);
}

std::string DurationError(std::string_view text, std::size_t pos, std::string_view what) {
  return fmt::format("invalid duration \"{}\": {} at position {}", text, what, pos);
}

}  // namespace

std::expected<DtnTime, std::string> DtnTime::ParseIso8601(std::string_view text) {
  IsoScanner s(text);
  if (text.empty()) return std::unexpected(std::string("invalid ISO-8601 time \"\": empty text"));

  // Year: four digits, or the expanded form "+YYYYY" / "-YYYYY" for instants far from now.
  std::int64_t year = 0;
  {
    std::int64_t sign = 1;
    const bool expanded = s.Peek() == '+' || s.Peek() == '-';
    if (expanded) {
      sign = s.Peek() == '-' ? -1 : 1;
      s.Skip();
    }
    const std::size_t start = s.pos();
    while (IsDigit(s.Peek())) {
      year = year * 10 + (s.Peek() - '0');
      s.Skip();
      if (year > kYearLimit) return std::unexpected(s.ErrorAt(start, "year out of range"));
    }
    const std::size_t n = s.pos() - start;
    if (n < 4 || (!expanded && n != 4)) {
      return std::unexpected(
          s.ErrorAt(start, expanded ? "expected at least 4 year digits" : "expected a 4-digit year"));
    }
    year *= sign;
  }
  if (auto e = s.Expect('-', "after the year"); !e) return std::unexpected(e.error());
  const std::size_t month_pos = s.pos();
  auto month = s.Digits(2, "month");
  if (!month) return std::unexpected(month.error());
  if (*month < 1 || *month > 12) return std::unexpected(s.ErrorAt(month_pos, "month not in 01..12"));
  if (auto e = s.Expect('-', "after the month"); !e) return std::unexpected(e.error());
  const std::size_t day_pos = s.pos();
  auto day = s.Digits(2, "day");
  if (!day) return std::unexpected(day.error());
  if (*day < 1 || *day > DaysInMonth(year, *month)) {
    return std::unexpected(
        s.ErrorAt(day_pos, fmt::format("day not in 01..{:02} for that month", DaysInMonth(year, *month))));
  }

  std::int64_t ms_of_day = 0;
  std::int64_t offset_ms = 0;
  if (!s.AtEnd()) {
    const char sep = s.Peek();
    if (sep != 'T' && sep != 't' && sep != ' ') {
      return std::unexpected(s.Error("expected 'T' or a space between date and time"));
    }
    s.Skip();
    const std::size_t hour_pos = s.pos();
    auto hour = s.Digits(2, "hour");
    if (!hour) return std::unexpected(hour.error());
    if (*hour > 23) return std::unexpected(s.ErrorAt(hour_pos, "hour not in 00..23"));
    if (auto e = s.Expect(':', "after the hour"); !e) return std::unexpected(e.error());
    const std::size_t minute_pos = s.pos();
    auto minute = s.Digits(2, "minute");
    if (!minute) return std::unexpected(minute.error());
    if (*minute > 59) return std::unexpected(s.ErrorAt(minute_pos, "minute not in 00..59"));
    int second = 0;
    int millis = 0;
    if (s.Peek() == ':') {
      s.Skip();
      const std::size_t second_pos = s.pos();
      auto sec = s.Digits(2, "second");
      if (!sec) return std::unexpected(sec.error());
      // DTN time, like POSIX time, has no leap seconds: 23:59:60 has no representation.
      if (*sec > 59)
        return std::unexpected(
            s.ErrorAt(second_pos, "second not in 00..59 (leap seconds are not representable)"));
      second = *sec;
      if (s.Peek() == '.' || s.Peek() == ',') {
        auto f = Fraction(s);
        if (!f) return std::unexpected(f.error());
        millis = *f;
      }
    }
    ms_of_day = *hour * kMsPerHour + *minute * kMsPerMinute + second * kMsPerSecond + millis;
    if (!s.AtEnd()) {
      const char c = s.Peek();
      if (c != 'Z' && c != 'z' && c != '+' && c != '-') {
        return std::unexpected(s.Error("expected 'Z', '+hh:mm', '-hh:mm' or the end of the text"));
      }
      auto off = Offset(s);
      if (!off) return std::unexpected(off.error());
      offset_ms = *off;
    }
  }
  if (!s.AtEnd()) return std::unexpected(s.Error("unexpected trailing text"));

  const std::int64_t unix_days = DaysFromCivil(year, *month, *day);
  // |year| <= 1e8 keeps |days| <= 3.7e10 and |ms| <= 3.2e18 < 9.2e18: no overflow.
  const std::int64_t dtn_ms = (unix_days - kDtnEpochUnixDays) * kMsPerDay + ms_of_day - offset_ms;
  return DtnTime(dtn_ms);
}

std::string DtnTime::ToIso8601() const {
  const std::int64_t days = FloorDiv(ms_, kMsPerDay);
  const std::int64_t ms_of_day = ms_ - days * kMsPerDay;
  const Civil c = CivilFromDays(days + kDtnEpochUnixDays);
  const std::int64_t h = ms_of_day / kMsPerHour;
  const std::int64_t m = ms_of_day % kMsPerHour / kMsPerMinute;
  const std::int64_t s = ms_of_day % kMsPerMinute / kMsPerSecond;
  const std::int64_t ms = ms_of_day % kMsPerSecond;
  // Years outside 0000..9999 use ISO-8601's expanded form so the text still parses back.
  const std::string year =
      (c.year >= 0 && c.year <= 9999) ? fmt::format("{:04}", c.year) : fmt::format("{:+05}", c.year);
  return fmt::format("{}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", year, c.month, c.day, h, m, s, ms);
}

std::string FormatDuration(Duration d) {
  const std::int64_t raw = d.count();
  // -2^63 ms has no positive twin to format.
  if (raw == std::numeric_limits<std::int64_t>::min()) return "-106751991167d 07h 12m 55.808s";
  if (raw < 0) return fmt::format("-{}", FormatDuration(Duration(-raw)));  // not "-" + s: GCC 12 -Wrestrict false positive
  if (raw == 0) return "0s";
  if (raw < kMsPerSecond) return fmt::format("{}ms", raw);

  const std::int64_t days = raw / kMsPerDay;
  const std::int64_t h = raw % kMsPerDay / kMsPerHour;
  const std::int64_t m = raw % kMsPerHour / kMsPerMinute;
  const std::int64_t s = raw % kMsPerMinute / kMsPerSecond;
  const std::int64_t ms = raw % kMsPerSecond;
  // Seconds with the milliseconds as a decimal fraction, trailing zeros dropped: "3.5", "1.28".
  std::string frac;
  if (ms != 0) {
    frac = fmt::format(".{:03}", ms);
    while (frac.back() == '0') frac.pop_back();
  }
  if (days > 0) {
    std::string out = fmt::format("{}d {:02}h {:02}m", days, h, m);
    if (s != 0 || ms != 0) out += fmt::format(" {:02}{}s", s, frac);
    return out;
  }
  if (h > 0) return fmt::format("{}h {:02}m {:02}{}s", h, m, s, frac);
  if (m > 0) return fmt::format("{}m {:02}{}s", m, s, frac);
  return fmt::format("{}{}s", s, frac);
}

std::expected<Duration, std::string> ParseDuration(std::string_view text) {
  struct Unit {
    std::string_view name;
    std::int64_t ms;
  };
  // Longest names first so "ms" is not read as "m" followed by garbage.
  static constexpr Unit kUnits[] = {
      {"ms", 1}, {"d", kMsPerDay}, {"h", kMsPerHour}, {"m", kMsPerMinute}, {"s", kMsPerSecond}};

  if (text.empty()) return std::unexpected(std::string("invalid duration \"\": empty text"));
  std::size_t pos = 0;
  std::int64_t total_ms = 0;
  std::int64_t last_unit_ms = std::numeric_limits<std::int64_t>::max();
  int components = 0;
  auto skip_spaces = [&] {
    while (pos < text.size() && text[pos] == ' ') ++pos;
  };
  skip_spaces();
  while (pos < text.size()) {
    const std::size_t number_pos = pos;
    if (text[pos] == '-')
      return std::unexpected(DurationError(text, pos, "negative durations are not allowed"));
    if (text[pos] == '+') ++pos;
    std::int64_t whole = 0;
    std::int64_t frac = 0;
    std::int64_t frac_scale = 1;
    int whole_digits = 0;
    while (pos < text.size() && IsDigit(text[pos])) {
      if (whole > 100'000'000'000'000LL)
        return std::unexpected(DurationError(text, number_pos, "number too large"));
      whole = whole * 10 + (text[pos] - '0');
      ++whole_digits;
      ++pos;
    }
    int frac_digits = 0;
    if (pos < text.size() && text[pos] == '.') {
      ++pos;
      while (pos < text.size() && IsDigit(text[pos])) {
        if (frac_digits >= 9)
          return std::unexpected(DurationError(text, pos, "more than 9 fractional digits"));
        frac = frac * 10 + (text[pos] - '0');
        frac_scale *= 10;
        ++frac_digits;
        ++pos;
      }
    }
    if (whole_digits == 0 && frac_digits == 0) {
      return std::unexpected(DurationError(text, number_pos, "expected a number"));
    }
    // The unit; a bare number with nothing else in the text means seconds.
    std::optional<Unit> unit;
    const std::size_t unit_pos = pos;
    for (const Unit& u : kUnits) {
      if (text.substr(pos, u.name.size()) == u.name) {
        unit = u;
        pos += u.name.size();
        break;
      }
    }
    if (!unit) {
      skip_spaces();
      if (pos == text.size() && components == 0) {
        unit = Unit{"s", kMsPerSecond};
      } else {
        return std::unexpected(DurationError(text, unit_pos, "expected a unit (d, h, m, s or ms)"));
      }
    }
    if (unit->ms >= last_unit_ms) {
      return std::unexpected(
          DurationError(text, unit_pos, "units must go from largest to smallest, each once"));
    }
    last_unit_ms = unit->ms;
    const std::optional<std::int64_t> ms = ComponentMs(whole, frac, frac_scale, unit->ms);
    if (!ms) return std::unexpected(DurationError(text, number_pos, "finer than a millisecond"));
    if (*ms > kDurationLimitMs - total_ms) {
      return std::unexpected(DurationError(text, number_pos, "too large (overflow)"));
    }
    total_ms += *ms;
    ++components;
    skip_spaces();
  }
  if (components == 0) return std::unexpected(DurationError(text, 0, "expected a number"));
  return Duration(total_ms);
}

}  // namespace ics::clock
