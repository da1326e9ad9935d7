// Mission time: DTN time (RFC 9171 §4.2.6), milliseconds since 2000-01-01T00:00:00 UTC.
//
// DtnTime is a point in time; Duration (std::chrono::milliseconds) is a span. They are distinct
// types so that "a time plus a time" does not compile. DTN time ignores leap seconds, as RFC 9171
// does: it is a count of SI milliseconds on the UTC scale as POSIX time counts them.
#pragma once

#include <chrono>
#include <compare>
#include <cstdint>
#include <expected>
#include <string>
#include <string_view>

namespace ics::clock {

using Duration = std::chrono::milliseconds;

// Milliseconds between the Unix epoch (1970-01-01) and the DTN epoch (2000-01-01).
inline constexpr std::int64_t kDtnEpochUnixMs = 946'684'800'000;

class DtnTime {
 public:
  constexpr DtnTime() = default;
  static constexpr DtnTime FromMillis(std::int64_t ms) { return DtnTime(ms); }
  static constexpr DtnTime FromUnixMillis(std::int64_t unix_ms) { return DtnTime(unix_ms - kDtnEpochUnixMs); }
  static constexpr DtnTime Max() { return DtnTime(INT64_MAX / 4); }  // "never": leaves room for arithmetic

  // Parses UTC ISO-8601 text: "2026-11-29T04:54:55Z", "2026-11-29T04:54:55.123Z",
  // "2026-11-29T04:54:55+00:00", "2026-11-29 04:54:55" (UTC assumed) or a date alone. Also
  // "hh:mm" without seconds, other offsets ("+05:30", "-0800", "+02"; converted to UTC), up to 9
  // fractional digits (truncated to the millisecond) and expanded years ("+12345-01-01").
  // No leap seconds (":60" is an error).
  // Error: a message naming the text and what was wrong with it.
  static std::expected<DtnTime, std::string> ParseIso8601(std::string_view text);

  constexpr std::int64_t millis() const { return ms_; }
  constexpr std::int64_t unix_millis() const { return ms_ + kDtnEpochUnixMs; }
  // "2026-11-29T04:54:55.123Z" (milliseconds always printed, so the text sorts and round-trips).
  // Years outside 0000..9999 use ISO-8601's expanded form ("+73069-...") and still parse back.
  std::string ToIso8601() const;

  constexpr auto operator<=>(const DtnTime&) const = default;
  constexpr DtnTime operator+(Duration d) const { return DtnTime(ms_ + d.count()); }
  constexpr DtnTime operator-(Duration d) const { return DtnTime(ms_ - d.count()); }
  constexpr Duration operator-(DtnTime other) const { return Duration(ms_ - other.ms_); }
  constexpr DtnTime& operator+=(Duration d) {
    ms_ += d.count();
    return *this;
  }
  constexpr DtnTime& operator-=(Duration d) {
    ms_ -= d.count();
    return *this;
  }

 private:
  constexpr explicit DtnTime(std::int64_t ms) : ms_(ms) {}
  std::int64_t ms_ = 0;
};

// "1h 02m 03.5s", "14d 00h 00m", "250ms", "0s", "-5s": a duration for a person. Exact to the
// millisecond (seconds' fractions are printed when not zero); ParseDuration reads it back.
std::string FormatDuration(Duration d);
// Parses "90s", "10m", "1.5h", "2d", "250ms", "600" (seconds), "1h30m", "1h 02m 03.5s".
// Units d, h, m, s, ms, each at most once, largest first. Refuses negative values, fractions
// finer than a millisecond and totals beyond INT64_MAX/4 ms. Error names the text and position.
std::expected<Duration, std::string> ParseDuration(std::string_view text);

}  // namespace ics::clock
