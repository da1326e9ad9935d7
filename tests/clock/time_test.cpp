// Checks DTN time's conversion to and from ISO-8601 text and the duration parser/formatter.
// Known instants are computed by hand from Unix milliseconds in the test; random instants and
// durations (seeded, seed printed) must round-trip exactly; malformed text must name itself.
#include "clock/time.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <random>
#include <string>

#include "test_support.h"

namespace ics::clock {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t kMsPerDay = 86'400'000;

DtnTime Parse(std::string_view text) {
  auto t = DtnTime::ParseIso8601(text);
  INFO("text: ", text, " error: ", t ? std::string() : t.error());
  REQUIRE(t.has_value());
  return *t;
}

std::string ParseError(std::string_view text) {
  auto t = DtnTime::ParseIso8601(text);
  INFO("text: ", text);
  REQUIRE_FALSE(t.has_value());
  return t.error();
}

TEST_CASE("time: DTN time 0 is 2000-01-01T00:00:00.000Z") {
  CHECK(DtnTime().ToIso8601() == "2000-01-01T00:00:00.000Z");
  CHECK(Parse("2000-01-01T00:00:00Z") == DtnTime());
  CHECK(DtnTime::FromUnixMillis(946'684'800'000) == DtnTime());
  CHECK(DtnTime::FromMillis(-1).ToIso8601() == "1999-12-31T23:59:59.999Z");
}

TEST_CASE("time: 2026-11-29 matches the instant computed by hand from Unix milliseconds") {
  // 1970-01-01 .. 2026-01-01: 56 years, of which 14 leap (1972, 1976, ..., 2024).
  const std::int64_t days_to_2026 = 56 * 365 + 14;
  // January..October 2026 (not a leap year), then 28 whole days of November before the 29th.
  const std::int64_t days_jan_to_oct = 31 + 28 + 31 + 30 + 31 + 30 + 31 + 31 + 30 + 31;
  const std::int64_t unix_ms = (days_to_2026 + days_jan_to_oct + 28) * kMsPerDay;
  CHECK(unix_ms == 1'795'910'400'000);
  const DtnTime t = DtnTime::FromUnixMillis(unix_ms);
  CHECK(t.ToIso8601() == "2026-11-29T00:00:00.000Z");
  CHECK(Parse("2026-11-29T00:00:00Z") == t);
  CHECK(Parse("2026-11-29") == t);
  const DtnTime later = t + 4h + 54min + 55s + 123ms;
  CHECK(later.ToIso8601() == "2026-11-29T04:54:55.123Z");
  CHECK(Parse("2026-11-29T04:54:55.123Z") == later);
}

TEST_CASE("time: every accepted spelling of one instant parses to the same DTN time") {
  const DtnTime t = Parse("2026-11-29T04:54:55Z");
  CHECK(Parse("2026-11-29T04:54:55+00:00") == t);
  CHECK(Parse("2026-11-29T04:54:55-00:00") == t);
  CHECK(Parse("2026-11-29 04:54:55") == t);
  CHECK(Parse("2026-11-29T04:54:55") == t);
  CHECK(Parse("2026-11-29t04:54:55z") == t);
  CHECK(Parse("2026-11-29T10:24:55+05:30") == t);
  CHECK(Parse("2026-11-29T10:24:55+0530") == t);
  CHECK(Parse("2026-11-28T20:54:55-08:00") == t);
  CHECK(Parse("2026-11-29T06:54:55+02") == t);
  CHECK(Parse("2026-11-29T04:54:55.000Z") == t);
  CHECK(Parse("2026-11-29T04:54Z") == t - 55s);
}

TEST_CASE("time: fractional seconds are kept to the millisecond and truncated beyond") {
  const DtnTime t = Parse("2026-11-29T04:54:55Z");
  CHECK(Parse("2026-11-29T04:54:55.5Z") == t + 500ms);
  CHECK(Parse("2026-11-29T04:54:55.12Z") == t + 120ms);
  CHECK(Parse("2026-11-29T04:54:55,25Z") == t + 250ms);
  CHECK(Parse("2026-11-29T04:54:55.123999999Z") == t + 123ms);
}

TEST_CASE("time: leap days follow the Gregorian rules") {
  CHECK(Parse("2000-02-29") == DtnTime() + Duration((31 + 28) * kMsPerDay));
  CHECK(Parse("2024-02-29").ToIso8601() == "2024-02-29T00:00:00.000Z");
  CHECK(Parse("2024-03-01") - Parse("2024-02-28") == Duration(2 * kMsPerDay));
  CHECK(Parse("2100-03-01") - Parse("2100-02-28") == Duration(kMsPerDay));
  CHECK(ParseError("2100-02-29").find("day not in 01..28") != std::string::npos);
  CHECK(ParseError("1900-02-29").find("day not in 01..28") != std::string::npos);
}

TEST_CASE("time: random instants round-trip through ISO-8601 text") {
  const std::uint64_t seed = testing::TestSeed();
  MESSAGE("seed=", seed, " (reproduce with ICS_SEED=", seed, ")");
  INFO("seed=", seed);
  std::mt19937_64 rng(seed);
  // From 1600 to 2400 and beyond, to cover negative DTN times and 400-year era boundaries.
  std::uniform_int_distribution<std::int64_t> ms(-400LL * 366 * kMsPerDay, 400LL * 366 * kMsPerDay);
  for (int i = 0; i < 2000; ++i) {
    const DtnTime t = DtnTime::FromMillis(ms(rng));
    const std::string text = t.ToIso8601();
    INFO("t=", t.millis(), " text=", text);
    CHECK(text.size() == 24);
    CHECK(Parse(text) == t);
  }
}

TEST_CASE("time: far instants use the expanded year form and still round-trip") {
  const std::string never = DtnTime::Max().ToIso8601();
  CHECK(never.front() == '+');
  CHECK(Parse(never) == DtnTime::Max());
  const DtnTime ancient = Parse("-0001-03-01");
  CHECK(ancient.ToIso8601() == "-0001-03-01T00:00:00.000Z");
  CHECK(Parse("+12345-06-07T08:09:10.011Z").ToIso8601() == "+12345-06-07T08:09:10.011Z");
}

TEST_CASE("time: malformed ISO-8601 text is refused with the text and the position") {
  const std::string e = ParseError("2026-13-01");
  CHECK(e.find("\"2026-13-01\"") != std::string::npos);
  CHECK(e.find("month") != std::string::npos);
  CHECK(e.find("position 5") != std::string::npos);

  CHECK(ParseError("").find("empty") != std::string::npos);
  CHECK(ParseError("garbage").find("position 0") != std::string::npos);
  CHECK(ParseError("26-11-29").find("4-digit year") != std::string::npos);
  CHECK(ParseError("2026-11-31").find("day not in 01..30") != std::string::npos);
  CHECK(ParseError("2026-11-29X10:00").find("'T' or a space") != std::string::npos);
  CHECK(ParseError("2026-11-29T24:00:00Z").find("hour") != std::string::npos);
  CHECK(ParseError("2026-11-29T10:60:00Z").find("minute") != std::string::npos);
  CHECK(ParseError("2026-11-29T23:59:60Z").find("leap second") != std::string::npos);
  CHECK(ParseError("2026-11-29T10:00:00Zjunk").find("position 20") != std::string::npos);
  CHECK(ParseError("2026-11-29T10:00:00+25:00").find("offset") != std::string::npos);
  CHECK(ParseError("2026-11-29T10:00:00.Z").find("decimal point") != std::string::npos);
  CHECK(ParseError("2026-11-29T10:00:00 UTC").find("'Z'") != std::string::npos);
  CHECK(ParseError("2026-11-29T10").find("expected ':'") != std::string::npos);
  CHECK(ParseError("2026-11-29T").find("end of text") != std::string::npos);
}

TEST_CASE("time: durations format for a person, exactly to the millisecond") {
  CHECK(FormatDuration(0ms) == "0s");
  CHECK(FormatDuration(250ms) == "250ms");
  CHECK(FormatDuration(1500ms) == "1.5s");
  CHECK(FormatDuration(1282ms) == "1.282s");
  CHECK(FormatDuration(90s) == "1m 30s");
  CHECK(FormatDuration(1h + 2min + 3500ms) == "1h 02m 03.5s");
  CHECK(FormatDuration(1h) == "1h 00m 00s");
  CHECK(FormatDuration(Duration(14 * kMsPerDay)) == "14d 00h 00m");
  CHECK(FormatDuration(Duration(14 * kMsPerDay) + 5s) == "14d 00h 00m 05s");
  CHECK(FormatDuration(-5s) == "-5s");
  CHECK(FormatDuration(Duration::min()) == "-106751991167d 07h 12m 55.808s");
  CHECK(FormatDuration(Duration::max()) == "106751991167d 07h 12m 55.807s");
}

TEST_CASE("time: durations parse from the documented spellings") {
  const auto p = [](std::string_view text) {
    auto d = ParseDuration(text);
    INFO("text: ", text, " error: ", d ? std::string() : d.error());
    REQUIRE(d.has_value());
    return *d;
  };
  CHECK(p("90s") == 90s);
  CHECK(p("10m") == 10min);
  CHECK(p("1.5h") == 90min);
  CHECK(p("2d") == Duration(2 * kMsPerDay));
  CHECK(p("250ms") == 250ms);
  CHECK(p("600") == 600s);
  CHECK(p("1.5") == 1500ms);
  CHECK(p("1h30m") == 90min);
  CHECK(p("1h 02m 03.5s") == 1h + 2min + 3500ms);
  CHECK(p("14d 00h 00m") == Duration(14 * kMsPerDay));
  CHECK(p("1m 30s 250ms") == 90250ms);
  CHECK(p("0") == 0ms);
  CHECK(p(".5s") == 500ms);
}

TEST_CASE("time: malformed, negative and overflowing durations are refused with the text") {
  const auto e = [](std::string_view text) {
    auto d = ParseDuration(text);
    INFO("text: ", text);
    REQUIRE_FALSE(d.has_value());
    CHECK(d.error().find(fmt::format("\"{}\"", text)) != std::string::npos);
    return d.error();
  };
  CHECK(e("").find("empty") != std::string::npos);
  CHECK(e("-5s").find("negative") != std::string::npos);
  CHECK(e("abc").find("expected a number") != std::string::npos);
  CHECK(e("5x").find("unit") != std::string::npos);
  CHECK(e("5 6").find("unit") != std::string::npos);
  CHECK(e("30m1h").find("largest to smallest") != std::string::npos);
  CHECK(e("1s1s").find("largest to smallest") != std::string::npos);
  CHECK(e("0.0001s").find("millisecond") != std::string::npos);
  CHECK(e("0.5ms").find("millisecond") != std::string::npos);
  CHECK(e("99999999999999d").find("overflow") != std::string::npos);
  CHECK(e("999999999999999999999s").find("too large") != std::string::npos);
  CHECK(e("1h 5").find("unit") != std::string::npos);
}

TEST_CASE("time: random durations round-trip through FormatDuration and ParseDuration") {
  const std::uint64_t seed = testing::TestSeed();
  MESSAGE("seed=", seed, " (reproduce with ICS_SEED=", seed, ")");
  INFO("seed=", seed);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> digits(0, 12);
  for (int i = 0; i < 2000; ++i) {
    // Magnitudes from milliseconds to decades.
    std::int64_t limit = 1;
    for (int k = digits(rng); k > 0; --k) limit *= 10;
    const Duration d(std::uniform_int_distribution<std::int64_t>(0, limit)(rng));
    const std::string text = FormatDuration(d);
    INFO("ms=", d.count(), " text=", text);
    auto back = ParseDuration(text);
    REQUIRE(back.has_value());
    CHECK(*back == d);
  }
}

}  // namespace
}  // namespace ics::clock
