// ics-replay: replay mission latency scenarios deterministically and check safety. Parses options
// and calls the library (scenarios/replay.h); see scenarios/README.md for the commands.
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#ifdef ICS_WITH_MIMALLOC
#include <mimalloc.h>
#endif

#include "scenarios/bench.h"
#include "scenarios/replay.h"
#include "scenarios/scenario_file.h"

namespace {

using namespace ics::scenarios;

std::expected<Scenario, std::string> Load(const std::string& path) {
  auto s = LoadScenarioFile(path);
  if (!s) return std::unexpected(s.error().ToString());
  return std::move(*s);
}

int Run(const std::string& file, std::uint64_t seed, const std::string& out, const std::string& until,
        const std::string& stores) {
  auto scenario = Load(file);
  if (!scenario) {
    std::fprintf(stderr, "ics-replay: %s\n", scenario.error().c_str());
    return 2;
  }
  ReplayOptions options;
  options.seed = seed;
  options.stores = stores == "sqlite" ? StoreKind::kSqlite : StoreKind::kMemory;
  if (!until.empty()) {
    auto d = ics::clock::ParseDuration(until);
    if (!d) {
      std::fprintf(stderr, "ics-replay: --until: %s\n", d.error().c_str());
      return 2;
    }
    options.until = *d;
  }
  const auto wall_start = std::chrono::steady_clock::now();
  if (isatty(STDERR_FILENO)) {
    options.progress = [wall_start](ics::clock::Duration reached, std::uint64_t events) {
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
      std::fprintf(stderr, "\r  simulated %s, %llu events, %.0f events/s   ", ics::clock::FormatDuration(reached).c_str(),
                   static_cast<unsigned long long>(events), wall > 0 ? static_cast<double>(events) / wall : 0.0);
    };
  }
  std::filesystem::create_directories(out);
  auto result = RunReplay(*scenario, options, out + "/epochlog.db");
  if (options.progress) std::fprintf(stderr, "\r%60s\r", "");
  if (!result) {
    std::fprintf(stderr, "ics-replay: %s\n", result.error().c_str());
    return 2;
  }
  if (auto ok = WriteOutputs(*result, out); !ok) {
    std::fprintf(stderr, "ics-replay: %s\n", ok.error().c_str());
    return 2;
  }
  std::fputs(SummaryText(*result).c_str(), stdout);
  std::printf("  outputs: %s/{report.json,events.jsonl,timeline.svg,epochlog.db}\n", out.c_str());
  return result->violations.empty() ? 0 : 1;
}

bool ParseShard(const std::string& text, int& index, int& count) {
  const auto slash = text.find('/');
  if (slash == std::string::npos) return false;
  try {
    index = std::stoi(text.substr(0, slash));
    count = std::stoi(text.substr(slash + 1));
  } catch (...) {
    return false;
  }
  return count >= 1 && index >= 0 && index < count;
}

int Fuzz(const std::string& file, std::uint64_t seeds, std::uint64_t first_seed, int jobs, const std::string& shard,
         const std::string& summary_path) {
  auto scenario = Load(file);
  if (!scenario) {
    std::fprintf(stderr, "ics-replay: %s\n", scenario.error().c_str());
    return 2;
  }
  FuzzOptions o;
  o.seeds = seeds;
  o.first_seed = first_seed;
  o.jobs = jobs > 0 ? jobs : static_cast<int>(std::max(1L, sysconf(_SC_NPROCESSORS_ONLN)));
  if (!shard.empty() && !ParseShard(shard, o.shard_index, o.shard_count)) {
    std::fprintf(stderr, "ics-replay: --shard must be I/N with 0 <= I < N (got '%s')\n", shard.c_str());
    return 2;
  }
  const auto wall_start = std::chrono::steady_clock::now();
  if (isatty(STDERR_FILENO)) {
    o.progress = [wall_start](std::uint64_t done, std::uint64_t total) {
      const int width = 40;
      const int filled = total == 0 ? width : static_cast<int>(width * done / total);
      const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
      std::fprintf(stderr, "\r  [%s%s] %llu/%llu seeds, %.1fs", std::string(static_cast<std::size_t>(filled), '#').c_str(),
                   std::string(static_cast<std::size_t>(width - filled), '.').c_str(),
                   static_cast<unsigned long long>(done), static_cast<unsigned long long>(total), wall);
    };
  }
  const FuzzSummary summary = RunFuzz(*scenario, o);
  if (o.progress) std::fprintf(stderr, "\n");
  if (!summary_path.empty()) {
    std::ofstream f(summary_path, std::ios::trunc);
    f << FuzzSummaryJson(summary);
    if (!f) {
      std::fprintf(stderr, "ics-replay: %s: cannot write\n", summary_path.c_str());
      return 2;
    }
  }
  std::fputs(FuzzSummaryText(summary).c_str(), stdout);
  return summary.violations == 0 ? 0 : 1;
}

int Merge(const std::vector<std::string>& files, const std::string& summary_path) {
  std::vector<FuzzSummary> parts;
  for (const auto& path : files) {
    std::ifstream f(path);
    if (!f) {
      std::fprintf(stderr, "ics-replay: %s: cannot open\n", path.c_str());
      return 2;
    }
    std::stringstream text;
    text << f.rdbuf();
    auto s = ParseFuzzSummaryJson(text.str(), path);
    if (!s) {
      std::fprintf(stderr, "ics-replay: %s\n", s.error().c_str());
      return 2;
    }
    parts.push_back(std::move(*s));
  }
  auto merged = MergeFuzzSummaries(parts);
  if (!merged) {
    std::fprintf(stderr, "ics-replay: %s\n", merged.error().c_str());
    return 2;
  }
  if (!summary_path.empty()) {
    std::ofstream f(summary_path, std::ios::trunc);
    f << FuzzSummaryJson(*merged);
  }
  std::fputs(FuzzSummaryText(*merged).c_str(), stdout);
  return merged->violations == 0 ? 0 : 1;
}

// The malloc this process runs on (see scenarios/CMakeLists.txt).
std::string AllocatorName() {
#ifdef ICS_WITH_MIMALLOC
  const int v = mi_version();
  return fmt::format("mimalloc {}.{}.{}", v / 100, v / 10 % 10, v % 10);
#else
  return "glibc malloc";
#endif
}

int Bench(const std::string& file, int rovers, int days, std::uint64_t seed) {
  auto scenario = Load(file);
  if (!scenario) {
    std::fprintf(stderr, "ics-replay: %s\n", scenario.error().c_str());
    return 2;
  }
  auto stretched = StretchScenario(*scenario, rovers, std::chrono::hours(24) * days);
  if (!stretched) {
    std::fprintf(stderr, "ics-replay: %s\n", stretched.error().c_str());
    return 2;
  }
  ReplayOptions options;
  options.seed = seed;
  options.record_events = false;
  // CPU time beside wall time: on a shared machine the wall time mostly measures the others' load.
  auto cpu_seconds = [] {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  };
  const double cpu0 = cpu_seconds();
  const auto t0 = std::chrono::steady_clock::now();
  auto result = RunReplay(*stretched, options);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double cpu = cpu_seconds() - cpu0;
  if (!result) {
    std::fprintf(stderr, "ics-replay: %s\n", result.error().c_str());
    return 2;
  }
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const double simulated = static_cast<double>(result->simulated.count()) / 1000.0;
  std::printf("bench: %s stretched to %d days with %d rovers (seed %llu)\n", scenario->name.c_str(), days, rovers,
              static_cast<unsigned long long>(seed));
  std::printf("  wall %.2f s, simulated %s, %llu events, %.0f events/s, simulated/wall %.3g, peak RSS %.1f MB\n", wall,
              ics::clock::FormatDuration(result->simulated).c_str(), static_cast<unsigned long long>(result->events),
              wall > 0 ? static_cast<double>(result->events) / wall : 0.0, wall > 0 ? simulated / wall : 0.0,
              static_cast<double>(usage.ru_maxrss) / 1024.0);
  std::printf("  allocator %s\n", AllocatorName().c_str());
  std::printf("  cpu %.2f s, %.0f events per CPU-second, simulated/cpu %.3g\n", cpu,
              cpu > 0 ? static_cast<double>(result->events) / cpu : 0.0, cpu > 0 ? simulated / cpu : 0.0);
  std::printf("  requests %llu, granted %llu, bundle transmissions %llu, safety violations %zu\n",
              static_cast<unsigned long long>(result->requests), static_cast<unsigned long long>(result->granted),
              static_cast<unsigned long long>(result->bundle_transmissions), result->violations.size());
  return result->violations.empty() ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ics-replay: deterministic replay of mission latency scenarios with a safety checker"};
  app.require_subcommand(1);

  std::string file, out = "replay-out", until, stores = "memory", shard, summary;
  std::uint64_t seed = 1, seeds = 100, first_seed = 1;
  int jobs = 0, rovers = 12, days = 687;
  std::vector<std::string> summaries;

  auto* run = app.add_subcommand("run", "replay one scenario with one seed and write its outputs");
  run->add_option("FILE", file, "scenario file (TOML)")->required();
  run->add_option("--seed", seed, "the seed (faults, drifts, random workloads)");
  run->add_option("--out", out, "output directory (report.json, events.jsonl, timeline.svg, epochlog.db)");
  run->add_option("--until", until, "stop after this much simulated time (e.g. 3d)");
  run->add_option("--stores", stores, "memory (default, fast) or sqlite (the SQLite stores, in a temp dir)")
      ->check(CLI::IsMember({"memory", "sqlite"}));

  auto* fuzz = app.add_subcommand("fuzz", "run many seeds with random faults within the file's [fuzz] bounds");
  fuzz->add_option("FILE", file, "scenario file (TOML)")->required();
  fuzz->add_option("--seeds", seeds, "how many seeds");
  fuzz->add_option("--first-seed", first_seed, "the first seed");
  fuzz->add_option("--jobs,-j", jobs, "worker processes (default: the number of CPUs)");
  fuzz->add_option("--shard", shard, "I/N: run only the I-th (0-based) of N disjoint slices of the seeds");
  fuzz->add_option("--summary", summary, "write the summary as JSON here (for `merge`)");

  auto* merge = app.add_subcommand("merge", "combine shard summaries written by `fuzz --summary`");
  merge->add_option("SUMMARY", summaries, "summary files")->required();
  merge->add_option("--summary", summary, "write the merged summary here");

  auto* bench = app.add_subcommand("bench", "replay speed: the scenario stretched to a Martian year with 12 rovers");
  bench->add_option("FILE", file, "scenario file (TOML)")->required();
  bench->add_option("--rovers", rovers, "rovers (clones of the file's rovers)");
  bench->add_option("--days", days, "simulated days");
  bench->add_option("--seed", seed, "the seed");

  CLI11_PARSE(app, argc, argv);
  if (run->parsed()) return Run(file, seed, out, until, stores);
  if (fuzz->parsed()) return Fuzz(file, seeds, first_seed, jobs, shard, summary);
  if (merge->parsed()) return Merge(summaries, summary);
  if (bench->parsed()) return Bench(file, rovers, days, seed);
  return 2;
}
