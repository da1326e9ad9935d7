// Checks the timeout policy's arithmetic against cases computed by hand in the comments: a Mars
// path, a Mars solar conjunction (14 days without contact) and a lunar link; plus invariants
// (suspicion >= 2 x max OWLT, the holder's view ends before the coordinator's) over seeded inputs.
#include "clock/timeout_policy.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <algorithm>
#include <random>

#include "test_support.h"

namespace ics::clock {
namespace {

using namespace std::chrono_literals;
constexpr std::int64_t kMsPerDay = 86'400'000;

bool Has(const std::string& text, std::string_view part) {
  INFO("looking for \"", part, "\" in: ", text);
  CHECK(text.find(part) != std::string::npos);
  return text.find(part) != std::string::npos;
}

PolicyInputs MarsPath(Duration contact_wait) {
  return PolicyInputs{
      .path = {.owlt = {182s, 1342s}, .contact_wait_max = contact_wait},
      .requester = {.drift_ppm = 10.0},
      .coordinator = {.drift_ppm = 10.0},
      .processing_margin = 5s,
  };
}

TEST_CASE("timeout_policy: a Mars path (OWLT 182..1342 s, 10 ppm clocks, 5 s processing)") {
  const TimeoutPolicy p(MarsPath(0s));
  // One way: 1342 s + 0 = 1342 s.
  CHECK(p.OneWayMax().value == 1342s);
  Has(p.OneWayMax().why, "one way = max OWLT 22m 22s + contact wait 0s = 22m 22s");
  // Round trip: 2 x (1342 s + 0) + 5 s = 2689 s.
  CHECK(p.RoundTripMax().value == 2689s);
  Has(p.RoundTripMax().why,
      "round trip = 2 x (max OWLT 22m 22s + contact wait 0s) + processing 5s = 44m 49s");
  // Request timeout: 2,689,000 ms + ceil(2,689,000 x 10e-6 = 26.89) = 2,689,027 ms.
  CHECK(p.RequestTimeout().value == 2'689'027ms);
  Has(p.RequestTimeout().why, "round trip 44m 49s + requester drift 27ms");
  // Suspicion: max(2 x 1342 s = 2,684,000, 2,689,027) + 5,000 = 2,694,027 ms.
  CHECK(p.SuspicionTimeout().value == 2'694'027ms);
  Has(p.SuspicionTimeout().why, "max(2 x max OWLT 22m 22s = 44m 44s, request timeout 44m 49.027s)");
  // Holder view of 1 h: 3,600,000 - 36 - 36 = 3,599,928 ms.
  CHECK(p.HolderView(1h).value == 3'599'928ms);
  Has(p.HolderView(1h).why, "term 1h 00m 00s - holder drift 36ms (10 ppm) - coordinator drift 36ms (10 ppm)");
  // Renew at: 3,599,928 - 2,689,000 - 27 = 910,901 ms.
  CHECK(p.RenewAt(1h).value == 910'901ms);
  Has(p.RenewAt(1h).why, "= 15m 10.901s");
  // Regrant margin: 36 + 36 + 1 = 73 ms.
  CHECK(p.RegrantMargin(1h).value == 73ms);
  Has(p.RegrantMargin(1h).why,
      "holder drift 36ms + coordinator drift 36ms over term 1h 00m 00s + 1ms = 73ms");
  const auto lease = p.LeaseTerm(1h);
  REQUIRE(lease.has_value());
  CHECK(lease->value == 1h);
  Has(lease->why, "granted");
}

TEST_CASE("timeout_policy: a Mars lease term shorter than the round trip is refused with the shortfall") {
  const TimeoutPolicy p(MarsPath(0s));
  // 30 min: holder view 1,800,000 - 18 - 18 = 1,799,964 ms < round trip 2,689,000 ms.
  const auto lease = p.LeaseTerm(30min);
  REQUIRE_FALSE(lease.has_value());
  CHECK(lease.error().value == 30min);
  Has(lease.error().why, "no usable time");
  Has(lease.error().why, "holder view 29m 59.964s < round trip 44m 49s");
  // Needed view 2,689,027 (round trip + drift over it); short by 2,689,027 - 1,799,964 = 889,063.
  Has(lease.error().why, "short by 14m 49.063s");
  // Shortest usable t: t - 2 ceil(t x 1e-5) >= 2,689,027: t = 2,689,081 (2,689,081 - 54).
  Has(lease.error().why, "the shortest usable term is 44m 49.081s");
  CHECK(p.LeaseTerm(2'689'081ms).has_value());
  CHECK_FALSE(p.LeaseTerm(2'689'080ms).has_value());
  CHECK_FALSE(p.LeaseTerm(0ms).has_value());
  CHECK_FALSE(p.LeaseTerm(-5s).has_value());
}

TEST_CASE("timeout_policy: at Mars solar conjunction timeouts exceed 14 days and a 1 h lease is refused") {
  const Duration fourteen_days(14 * kMsPerDay);  // 1,209,600,000 ms
  const TimeoutPolicy p(MarsPath(fourteen_days));
  // One way: 1,342,000 + 1,209,600,000 = 1,210,942,000 ms.
  CHECK(p.OneWayMax().value == 1'210'942'000ms);
  // Round trip: 2 x 1,210,942,000 + 5,000 = 2,421,889,000 ms (28 d 00 h 44 m 49 s).
  CHECK(p.RoundTripMax().value == 2'421'889'000ms);
  Has(p.RoundTripMax().why,
      "round trip = 2 x (max OWLT 22m 22s + contact wait 14d 00h 00m) + processing 5s = 28d 00h 44m 49s");
  // Request timeout: + ceil(24,218.89) = 24,219 -> 2,421,913,219 ms.
  CHECK(p.RequestTimeout().value == 2'421'913'219ms);
  CHECK(p.RequestTimeout().value > fourteen_days);
  // Suspicion: 2,421,913,219 + 5,000.
  CHECK(p.SuspicionTimeout().value == 2'421'918'219ms);
  CHECK(p.SuspicionTimeout().value > fourteen_days);

  const auto lease = p.LeaseTerm(1h);
  REQUIRE_FALSE(lease.has_value());
  // Holder view 3,599,928 ms; needed 2,421,913,219; short by 2,418,313,291 ms.
  Has(lease.error().why,
      "refused: no usable time: term 1h 00m 00s gives holder view 59m 59.928s < round trip "
      "28d 00h 44m 49s + holder drift over it 24.219s");
  Has(lease.error().why, fmt::format("short by {}", FormatDuration(2'418'313'291ms)));
  // Shortest t with t - 2 ceil(t x 1e-5) >= 2,421,913,219 is 2,421,961,659 ms.
  Has(lease.error().why, fmt::format("the shortest usable term is {}", FormatDuration(2'421'961'659ms)));
  CHECK(p.RenewAt(1h).value < 0ms);
  Has(p.RenewAt(1h).why, "cannot renew in time");
  CHECK(p.LeaseTerm(2'421'961'659ms).has_value());
  CHECK_FALSE(p.LeaseTerm(2'421'961'658ms).has_value());
  Has(p.Describe(1h), "REFUSED");
}

TEST_CASE("timeout_policy: a lunar link (OWLT 1.28 s, 1 ppm clocks, 500 ms processing)") {
  const TimeoutPolicy p(PolicyInputs{
      .path = {.owlt = {1282ms, 1283ms}, .contact_wait_max = 0ms},
      .requester = {.drift_ppm = 1.0},
      .coordinator = {.drift_ppm = 1.0},
      .processing_margin = 500ms,
  });
  // Round trip: 2 x 1283 + 500 = 3066 ms; request timeout + ceil(0.003066) = 3067 ms.
  CHECK(p.OneWayMax().value == 1283ms);
  CHECK(p.RoundTripMax().value == 3066ms);
  CHECK(p.RequestTimeout().value == 3067ms);
  // Suspicion: max(2566, 3067) + 500 = 3567 ms.
  CHECK(p.SuspicionTimeout().value == 3567ms);
  // 30 s term: drifts ceil(0.03) = 1 ms each: view 29,998; renew at 29,998 - 3066 - 1 = 26,931.
  CHECK(p.HolderView(30s).value == 29'998ms);
  CHECK(p.RenewAt(30s).value == 26'931ms);
  CHECK(p.RegrantMargin(30s).value == 3ms);
  CHECK(p.LeaseTerm(30s).has_value());
  // 3 s term: view 2998 ms < round trip 3066 ms: refused.
  const auto short_lease = p.LeaseTerm(3s);
  REQUIRE_FALSE(short_lease.has_value());
  Has(short_lease.error().why, "holder view 2.998s < round trip 3.066s");
}

TEST_CASE("timeout_policy: suspicion is never below 2 x max OWLT") {
  // With no processing, drift or contact wait, it is exactly 2 x max OWLT.
  const TimeoutPolicy bare(PolicyInputs{.path = {.owlt = {100s, 1260s}, .contact_wait_max = 0s},
                                        .requester = {},
                                        .coordinator = {},
                                        .processing_margin = 0s});
  CHECK(bare.SuspicionTimeout().value == 2520s);
  CHECK(bare.RequestTimeout().value == 2520s);

  const std::uint64_t seed = testing::TestSeed();
  MESSAGE("seed=", seed, " (reproduce with ICS_SEED=", seed, ")");
  INFO("seed=", seed);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> ms(0, 30 * kMsPerDay);
  std::uniform_real_distribution<double> ppm(0.0, 200.0);
  for (int i = 0; i < 1000; ++i) {
    std::int64_t a = ms(rng) / 1000;
    std::int64_t b = ms(rng) / 1000;
    if (a > b) std::swap(a, b);
    const TimeoutPolicy p(PolicyInputs{
        .path = {.owlt = {Duration(a), Duration(b)}, .contact_wait_max = Duration(ms(rng))},
        .requester = {.drift_ppm = ppm(rng)},
        .coordinator = {.drift_ppm = ppm(rng)},
        .processing_margin = Duration(ms(rng) / 10'000),
    });
    CHECK(p.SuspicionTimeout().value >= 2 * p.inputs().path.owlt.max);
    CHECK(p.SuspicionTimeout().value >= p.RequestTimeout().value);
    CHECK(p.RequestTimeout().value >= p.RoundTripMax().value);
  }
}

TEST_CASE("timeout_policy: the holder's view ends in true time before the coordinator's, with margin") {
  for (double ppm_holder : {0.0, 10.0, 100.0}) {
    for (double ppm_coord : {0.0, 10.0, 100.0}) {
      const TimeoutPolicy p(PolicyInputs{.path = {.owlt = {1s, 2s}, .contact_wait_max = 0s},
                                         .requester = {.drift_ppm = ppm_holder, .skew = 0ms},
                                         .coordinator = {.drift_ppm = ppm_coord, .skew = 0ms},
                                         .processing_margin = 0s});
      for (Duration term : {Duration(1s), Duration(1h), Duration(7 * kMsPerDay), Duration(123'457ms)}) {
        INFO("holder ", ppm_holder, " ppm, coordinator ", ppm_coord, " ppm, term ", term.count(), " ms");
        const Duration view = p.HolderView(term).value;
        const Duration margin = p.RegrantMargin(term).value;
        // The two figures share the drift terms: view + margin = term + 1 ms.
        CHECK(view + margin == term + 1ms);
        // Worst case: the holder's clock runs slow (its view ends late in true time) and the
        // coordinator's runs fast (its view ends early); the holder started counting no later
        // than the grant, so ending first needs view / (1 - rho_h) <= term / (1 + rho_c).
        const double rho_h = ppm_holder / 1e6;
        const double rho_c = ppm_coord / 1e6;
        CHECK(static_cast<double>(view.count()) / (1.0 - rho_h) <=
              static_cast<double>(term.count()) / (1.0 + rho_c));
        CHECK(static_cast<double>(view.count()) / (1.0 - rho_h) <
              static_cast<double>((term + margin).count()) / (1.0 + rho_c));
      }
    }
  }
}

TEST_CASE("timeout_policy: the figures without explanations equal the explained ones") {
  const std::uint64_t seed = testing::TestSeed();
  INFO("seed=", seed);
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<std::int64_t> ms(0, 30LL * kMsPerDay);
  std::uniform_int_distribution<int> ppb(0, 200'000);
  // The Mars path by hand first: round trip 2 x 1342 s + 5 s = 2689 s; request timeout adds
  // ceil(2689 s x 10e-6) = 27 ms; suspicion = max(2684 s, 2689.027 s) + 5 s = 2694.027 s.
  const TimeoutPolicy mars(MarsPath(0s));
  CHECK(mars.RoundTripMaxValue() == 2689s);
  CHECK(mars.RequestTimeoutValue() == 2689027ms);
  CHECK(mars.SuspicionTimeoutValue() == 2694027ms);
  for (int i = 0; i < 200; ++i) {
    const std::int64_t a = ms(rng), b = ms(rng);
    const TimeoutPolicy p(PolicyInputs{
        .path = {.owlt = {Duration(std::min(a, b)), Duration(std::max(a, b))}, .contact_wait_max = Duration(ms(rng))},
        .requester = {.drift_ppm = ppb(rng) / 1000.0},
        .coordinator = {.drift_ppm = ppb(rng) / 1000.0},
        .processing_margin = Duration(ms(rng) / 1000)});
    const Duration term(ms(rng));
    CHECK(p.OneWayMaxValue() == p.OneWayMax().value);
    CHECK(p.RoundTripMaxValue() == p.RoundTripMax().value);
    CHECK(p.RequestTimeoutValue() == p.RequestTimeout().value);
    CHECK(p.SuspicionTimeoutValue() == p.SuspicionTimeout().value);
    CHECK(p.HolderViewValue(term) == p.HolderView(term).value);
    CHECK(p.RenewAtValue(term) == p.RenewAt(term).value);
    CHECK(p.RegrantMarginValue(term) == p.RegrantMargin(term).value);
  }
}

TEST_CASE("timeout_policy: Describe prints every figure, one per line") {
  const TimeoutPolicy p(MarsPath(0s));
  const std::string text = p.Describe(1h);
  for (std::string_view name : {"one-way max:", "round trip max:", "request timeout:", "suspicion timeout:",
                                "lease term:", "holder view:", "renew at:", "regrant margin:"}) {
    Has(text, name);
  }
  CHECK(std::count(text.begin(), text.end(), '\n') == 10);
  Has(text, p.RoundTripMax().why);
  Has(text, "44m 49s");
}

TEST_CASE("timeout_policy: invalid inputs abort with a message") {
  CHECK(testing::AbortMessage([] {
          PolicyInputs in;
          in.path.owlt = {10s, 5s};
          TimeoutPolicy p(in);
        }).find("invalid inputs") != std::string::npos);
  CHECK(testing::AbortMessage([] {
          PolicyInputs in;
          in.requester.drift_ppm = -1.0;
          TimeoutPolicy p(in);
        }).find("invalid inputs") != std::string::npos);
}

}  // namespace
}  // namespace ics::clock
