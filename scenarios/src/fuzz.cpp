// Fuzzing: random faults per seed within the scenario's [fuzz] bounds, run in worker processes
// (fork: every run is independent and no library state is shared between runs), and summaries
// that merge across shards. A seed's faults depend only on (scenario, seed), never on the shard
// or the number of workers, so a failing seed replays with `ics-replay run --seed`.
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <map>
#include <random>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "scenarios/replay.h"

namespace ics::scenarios {
namespace {
using json = nlohmann::ordered_json;

Duration Uniform(std::mt19937_64& g, Duration lo, Duration hi) {
  if (hi <= lo) return lo;
  return lo + Duration(static_cast<std::int64_t>(g() % static_cast<std::uint64_t>((hi - lo).count() + 1)));
}
double Uniform(std::mt19937_64& g, double lo, double hi) {
  if (hi <= lo) return lo;
  return std::uniform_real_distribution<double>(lo, hi)(g);
}

json SeedJson(const FuzzSeedResult& r) {
  return json{{"seed", r.seed},           {"violations", r.violations},         {"requests", r.requests},
              {"granted", r.granted},     {"latency_p50_ms", r.latency_p50.count()},
              {"latency_max_ms", r.latency_max.count()}, {"first_violation", r.first_violation}};
}
FuzzSeedResult SeedFromJson(const json& j) {
  FuzzSeedResult r;
  r.seed = j.at("seed").get<std::uint64_t>();
  r.violations = j.at("violations").get<std::uint64_t>();
  r.requests = j.at("requests").get<std::uint64_t>();
  r.granted = j.at("granted").get<std::uint64_t>();
  r.latency_p50 = Duration(j.at("latency_p50_ms").get<std::int64_t>());
  r.latency_max = Duration(j.at("latency_max_ms").get<std::int64_t>());
  r.first_violation = j.at("first_violation").get<std::string>();
  return r;
}

FuzzSeedResult RunSeed(const Scenario& scenario, std::uint64_t seed) {
  FuzzSeedResult out;
  out.seed = seed;
  const Scenario fuzzed = FuzzScenario(scenario, seed);
  ReplayOptions options;
  options.seed = seed;
  options.record_events = false;
  auto r = RunReplay(fuzzed, options);
  if (!r) {
    out.violations = 1;
    out.first_violation = "the run failed: " + r.error();
    return out;
  }
  out.violations = r->violations.size();
  out.requests = r->requests;
  out.granted = r->granted;
  out.latency_p50 = r->latency.p50;
  out.latency_max = r->latency.max;
  if (!r->violations.empty()) {
    const auto& v = r->violations.front();
    out.first_violation = fmt::format("{} {} {}: {}", v.at.ToIso8601(), ViolationKindName(v.kind),
                                      v.resource.ToString(), v.detail);
  }
  return out;
}

void Summarise(FuzzSummary& s) {
  std::sort(s.runs.begin(), s.runs.end(), [](const auto& a, const auto& b) { return a.seed < b.seed; });
  s.seeds = s.runs.size();
  s.violations = s.requests = s.granted = 0;
  s.latency_max = Duration(0);
  s.failing_seeds.clear();
  std::vector<Duration> p50s;
  for (const auto& r : s.runs) {
    s.violations += r.violations;
    s.requests += r.requests;
    s.granted += r.granted;
    s.latency_max = std::max(s.latency_max, r.latency_max);
    if (r.granted > 0) p50s.push_back(r.latency_p50);
    if (r.violations > 0) s.failing_seeds.push_back(r.seed);
  }
  std::sort(p50s.begin(), p50s.end());
  s.latency_p50_median = p50s.empty() ? Duration(0) : p50s[p50s.size() / 2];
}
}  // namespace

Scenario FuzzScenario(const Scenario& base, std::uint64_t seed) {
  Scenario s = base;
  std::mt19937_64 g(seed * 0x9E3779B97F4A7C15ull + 0xF022);
  const FuzzBounds& b = base.fuzz;
  LinkFaults lf;
  lf.loss = Uniform(g, 0.0, b.loss_max);
  lf.duplication = Uniform(g, 0.0, b.duplication_max);
  lf.reorder = Uniform(g, 0.0, b.reorder_max);
  lf.reorder_delay_max = b.reorder_delay_max;
  if (lf.loss > 0 || lf.duplication > 0 || lf.reorder > 0) s.link_faults.push_back(lf);
  std::vector<std::string> names, crashable;
  for (const auto& n : base.nodes) {
    names.push_back(n.name);
    if (n.role != Role::kGuard) crashable.push_back(n.name);
  }
  const Duration len = base.duration;
  if (b.partitions_max > 0 && names.size() > 1) {
    const int k = static_cast<int>(g() % static_cast<std::uint64_t>(b.partitions_max + 1));
    for (int i = 0; i < k; ++i) {
      Partition p;
      const std::size_t who = g() % names.size();
      p.side_a = {names[who]};
      for (std::size_t j = 0; j < names.size(); ++j) {
        if (j != who) p.side_b.push_back(names[j]);
      }
      p.from = Uniform(g, Duration(0), len);
      p.until = p.from + Uniform(g, std::chrono::seconds(1), std::max<Duration>(b.partition_length_max, std::chrono::seconds(1)));
      s.partitions.push_back(p);
    }
  }
  if (b.crashes_max > 0 && !crashable.empty()) {
    const int k = static_cast<int>(g() % static_cast<std::uint64_t>(b.crashes_max + 1));
    for (int i = 0; i < k; ++i) {
      Crash c;
      c.node = crashable[g() % crashable.size()];
      c.kind = (g() % 2 == 0) ? CrashKind::kCrash : CrashKind::kSleep;
      c.at = Uniform(g, Duration(0), len);
      c.down_for = Uniform(g, std::chrono::seconds(1), std::max<Duration>(b.down_for_max, std::chrono::seconds(1)));
      s.crashes.push_back(c);
    }
  }
  if (b.drift_ppm_max > 0) {
    for (auto& n : s.nodes) {
      const double bound = std::min(b.drift_ppm_max, std::abs(n.clock.drift_ppm));
      n.actual_drift_ppm = Uniform(g, -bound, bound);
    }
  }
  return s;
}

FuzzSummary RunFuzz(const Scenario& scenario, const FuzzOptions& o) {
  FuzzSummary summary;
  summary.scenario = scenario.name;
  std::vector<std::uint64_t> seeds;
  for (std::uint64_t k = 0; k < o.seeds; ++k) {
    if (static_cast<int>(k % static_cast<std::uint64_t>(std::max(1, o.shard_count))) == o.shard_index) {
      seeds.push_back(o.first_seed + k);
    }
  }
  const int jobs = std::max(1, std::min<int>(o.jobs, static_cast<int>(seeds.size())));
  std::uint64_t done = 0;
  if (jobs <= 1) {
    for (auto seed : seeds) {
      summary.runs.push_back(RunSeed(scenario, seed));
      if (o.progress) o.progress(++done, seeds.size());
    }
    Summarise(summary);
    return summary;
  }
  // Workers: worker w runs seeds[i] for i % jobs == w and writes one JSON line per seed.
  struct Worker {
    pid_t pid = -1;
    int fd = -1;
    std::string buffer;
  };
  std::vector<Worker> workers(static_cast<std::size_t>(jobs));
  std::fflush(nullptr);
  for (int w = 0; w < jobs; ++w) {
    int fds[2];
    if (pipe(fds) != 0) std::abort();
    const pid_t pid = fork();
    if (pid < 0) std::abort();
    if (pid == 0) {
      close(fds[0]);
      for (std::size_t i = static_cast<std::size_t>(w); i < seeds.size(); i += static_cast<std::size_t>(jobs)) {
        const std::string line = SeedJson(RunSeed(scenario, seeds[i])).dump() + "\n";
        std::size_t off = 0;
        while (off < line.size()) {
          const ssize_t n = write(fds[1], line.data() + off, line.size() - off);
          if (n < 0 && errno == EINTR) continue;
          if (n <= 0) _exit(3);
          off += static_cast<std::size_t>(n);
        }
      }
      close(fds[1]);
      _exit(0);
    }
    close(fds[1]);
    workers[static_cast<std::size_t>(w)] = {pid, fds[0], {}};
  }
  std::size_t open = workers.size();
  while (open > 0) {
    std::vector<pollfd> pfds;
    std::vector<std::size_t> which;
    for (std::size_t w = 0; w < workers.size(); ++w) {
      if (workers[w].fd >= 0) {
        pfds.push_back({workers[w].fd, POLLIN, 0});
        which.push_back(w);
      }
    }
    if (poll(pfds.data(), pfds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      std::abort();
    }
    for (std::size_t i = 0; i < pfds.size(); ++i) {
      if (pfds[i].revents == 0) continue;
      Worker& wk = workers[which[i]];
      char buf[4096];
      const ssize_t n = read(wk.fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        close(wk.fd);
        wk.fd = -1;
        --open;
        continue;
      }
      wk.buffer.append(buf, static_cast<std::size_t>(n));
      std::size_t nl;
      while ((nl = wk.buffer.find('\n')) != std::string::npos) {
        summary.runs.push_back(SeedFromJson(json::parse(wk.buffer.substr(0, nl))));
        wk.buffer.erase(0, nl + 1);
        if (o.progress) o.progress(++done, seeds.size());
      }
    }
  }
  for (auto& wk : workers) {
    int status = 0;
    waitpid(wk.pid, &status, 0);
  }
  // A worker that died (a core aborted on a broken invariant) leaves seeds unreported: they fail.
  std::map<std::uint64_t, bool> reported;
  for (const auto& r : summary.runs) reported[r.seed] = true;
  for (auto seed : seeds) {
    if (!reported.contains(seed)) {
      FuzzSeedResult r;
      r.seed = seed;
      r.violations = 1;
      r.first_violation = "the worker running this seed died (a broken invariant aborted it); replay with run --seed";
      summary.runs.push_back(r);
    }
  }
  Summarise(summary);
  return summary;
}

std::string FuzzSummaryJson(const FuzzSummary& s) {
  json runs = json::array();
  for (const auto& r : s.runs) runs.push_back(SeedJson(r));
  json j{{"scenario", s.scenario},
         {"seeds", s.seeds},
         {"safety_violations", s.violations},
         {"failing_seeds", s.failing_seeds},
         {"requests", s.requests},
         {"acquisitions_granted", s.granted},
         {"latency_p50_median_s", static_cast<double>(s.latency_p50_median.count()) / 1000.0},
         {"latency_max_s", static_cast<double>(s.latency_max.count()) / 1000.0},
         {"runs", runs}};
  return j.dump(2) + "\n";
}

std::expected<FuzzSummary, std::string> ParseFuzzSummaryJson(const std::string& text, const std::string& source) {
  try {
    const json j = json::parse(text);
    FuzzSummary s;
    s.scenario = j.at("scenario").get<std::string>();
    for (const auto& r : j.at("runs")) s.runs.push_back(SeedFromJson(r));
    Summarise(s);
    return s;
  } catch (const std::exception& e) {
    return std::unexpected(fmt::format("{}: not a fuzz summary: {}", source, e.what()));
  }
}

std::expected<FuzzSummary, std::string> MergeFuzzSummaries(const std::vector<FuzzSummary>& summaries) {
  FuzzSummary out;
  std::map<std::uint64_t, FuzzSeedResult> by_seed;
  for (const auto& s : summaries) {
    if (!out.scenario.empty() && s.scenario != out.scenario) {
      return std::unexpected(fmt::format("summaries of different scenarios: '{}' and '{}'", out.scenario, s.scenario));
    }
    out.scenario = s.scenario;
    for (const auto& r : s.runs) by_seed[r.seed] = r;
  }
  for (auto& [seed, r] : by_seed) out.runs.push_back(r);
  Summarise(out);
  return out;
}

std::string FuzzSummaryText(const FuzzSummary& s) {
  std::string t = fmt::format("{}: {} seeds, {} safety violation(s); {} of {} requests granted, latency p50 (median "
                              "over seeds) {}, max {}\n",
                              s.scenario, s.seeds, s.violations, s.granted, s.requests,
                              clock::FormatDuration(s.latency_p50_median), clock::FormatDuration(s.latency_max));
  if (!s.failing_seeds.empty()) {
    t += "  failing seeds (replay with `ics-replay run FILE --seed N`):";
    for (auto seed : s.failing_seeds) t += fmt::format(" {}", seed);
    t += "\n";
    for (const auto& r : s.runs) {
      if (r.violations > 0) {
        t += fmt::format("  seed {}: {}\n", r.seed, r.first_violation);
        break;
      }
    }
  }
  return t;
}

}  // namespace ics::scenarios
