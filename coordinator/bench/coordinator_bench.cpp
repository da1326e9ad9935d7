// ics-coordinator-bench: measures the lease coordinator core (LeaseCore) with its durable epoch log
// (SqliteLeaseLog, synchronous=FULL under WAL, group commit), driven exactly as a driver drives it:
// Receive / Tick, TakeOutput, Stage(to_persist) per step, Flush per batch, and only then the
// batch's messages count as sent and reach the simulated rovers, who answer in the next batch.
//
// The documented command (Release build, from the repository root):
//   cmake -S . -B build/cbench -G Ninja -DCMAKE_BUILD_TYPE=Release -DICS_WERROR=ON
//   cmake --build build/cbench --target ics-coordinator-bench -j2
//   build/cbench/coordinator/ics-coordinator-bench --dir /var/tmp
// (all scenarios with the defaults below; --help lists the knobs, e.g. --scenarios pairs
// --batches 256,1024,4096 --pairs 200000, or --scenarios sustained --rate 10000 --seconds 60).
//
// Scenarios, each on a fresh epochlog.db in a new temp directory under --dir (removed afterwards
// unless --keep):
//  pairs      R rovers, each with one message in flight, cycle acquire(free resource) -> grant ->
//             release -> released over their own resources (never contended). A batch is N
//             decisions (Receives); a pair counts once the Flush that made its release durable has
//             returned. Decision latency = wall time from the Receive to the end of that Flush.
//  burst      K leases granted at one instant with one term; then one Tick at their expiry: the
//             wall time of Tick + Stage + Flush for all K expiries.
//  sustained  a steady population of rate x term leases, about `rate` expiring per simulated
//             second: every tick interval, Tick (expiries; timed with their Flush), then the
//             notified rovers re-acquire fresh resources (one more batch). Per-Tick latency is
//             reported per tenth of the run, to show whether p99 grows as the log grows.
// Simulated time runs as fast as the machine allows; "real time factor" says how many seconds of
// simulated load one wall second absorbs (>= 1: the coordinator keeps up). The machine is shared,
// so each scenario also splits its wall time into CPU used, time spent waiting for a CPU (other
// processes' load, from /proc/self/schedstat) and time blocked (disk writes, fsync), and prints a
// per-CPU-second figure that the load does not distort. --diagnose switches on experiments (not
// the shipped configuration, and printed as such) that locate the cost: see Options::diagnose.
// Figures measured on the team machine, and what they show, are in README.md beside this file.
//
// What this does not measure: message encoding and the bundle node (the daemon's own group commit
// of bundles.db), and PlanPolicy lookups (a fixed TimeoutPolicy is used here).
#include <fmt/format.h>
#include <sys/resource.h>
#include <sys/time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include "clock/time.h"
#include "clock/timeout_policy.h"
#include "coordinator/lease_core.h"
#include "coordinator/protocol.h"
#include "coordinator/sqlite_lease_log.h"

namespace ics::coordinator::bench {
namespace {

using clock::DtnTime;
using clock::Duration;
using WallClock = std::chrono::steady_clock;
using Nanos = std::int64_t;

constexpr NodeNumber kCoordinator = 1;
constexpr NodeNumber kFirstRover = 100;
const DtnTime kStart = DtnTime::FromMillis(820'000'000'000);  // about 2025-12

struct Options {
  std::string dir = "/var/tmp";
  bool keep = false;
  std::vector<std::string> scenarios = {"pairs", "burst", "sustained"};
  // pairs
  std::vector<std::size_t> batches = {256, 1024, 4096};
  std::size_t pairs = 200'000;
  std::size_t rovers = 8'192;
  std::size_t resources_per_rover = 4;
  // burst
  std::vector<std::size_t> bursts = {10'000, 50'000};
  // sustained
  std::size_t rate_per_s = 10'000;
  std::size_t seconds = 60;
  std::size_t tick_ms = 100;
  std::size_t term_s = 20;
  std::size_t sustained_rovers = 4'000;
  // Diagnostics, to locate costs (NOT the shipped configuration; printed as such):
  //   sync-off           PRAGMA synchronous=OFF (not durable: isolates the fsync cost)
  //   no-event-indexes   drops the events table's secondary indexes (isolates their write cost)
  //   drop-index=NAME    drops one index (e.g. events_by_rover_in_block)
  //   cache-mib=N        PRAGMA cache_size of N MiB (SQLite's default is 2 MiB)
  //   checkpoint=N       PRAGMA wal_autocheckpoint=N pages (default 1000)
  //   no-log             records are dropped, not staged (the core and this harness alone)
  std::vector<std::string> diagnose;
};

Nanos Since(WallClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(WallClock::now() - start).count();
}
double Seconds(Nanos ns) { return static_cast<double>(ns) / 1e9; }

// CPU time (user + system) this process has used: the machine is shared, so wall time alone
// mixes our cost with the other processes' load.
Nanos CpuNow() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto ns = [](const timeval& tv) {
    return static_cast<Nanos>(tv.tv_sec) * 1'000'000'000 + tv.tv_usec * 1'000;
  };
  return ns(usage.ru_utime) + ns(usage.ru_stime);
}

// Time this process spent runnable but waiting for a CPU (Linux schedstat: the other engineers'
// compilers), so wall = CPU + waiting for a CPU + blocked (disk writes, fsync).
Nanos RunQueueWaitNow() {
  std::ifstream in("/proc/self/schedstat");
  Nanos on_cpu = 0, waiting = 0;
  in >> on_cpu >> waiting;
  return waiting;
}

struct Usage {
  Nanos cpu = CpuNow();
  Nanos waiting = RunQueueWaitNow();
  WallClock::time_point wall = WallClock::now();
};

std::string CpuLine(const Usage& since, double units, std::string_view unit) {
  const Nanos cpu_ns = CpuNow() - since.cpu;
  const Nanos waiting_ns = RunQueueWaitNow() - since.waiting;
  const Nanos wall_ns = Since(since.wall);
  return fmt::format(
      "wall {:.2f} s = CPU {:.2f} s (user+sys, {:.0f}% of one core) + waiting for a CPU {:.2f} s + "
      "blocked (I/O, fsync) {:.2f} s; {:.0f} {} per CPU-second",
      Seconds(wall_ns), Seconds(cpu_ns), 100.0 * Seconds(cpu_ns) / Seconds(wall_ns), Seconds(waiting_ns),
      std::max(0.0, Seconds(wall_ns - cpu_ns - waiting_ns)), units / Seconds(cpu_ns), unit);
}

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "ics-coordinator-bench: %s\n", what.c_str());
  std::exit(1);
}

std::string Load() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return fmt::format("{} {} {}", a, b, c);
}

// p in [0, 1]; nearest-rank. `values` is sorted in place.
Nanos Percentile(std::vector<Nanos>& values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(values.size())));
  rank = std::clamp<std::size_t>(rank, 1, values.size());
  return values[rank - 1];
}

std::string Us(Nanos ns) {
  if (ns >= 10'000'000) return fmt::format("{:.1f} ms", static_cast<double>(ns) / 1e6);
  if (ns >= 1'000'000) return fmt::format("{:.2f} ms", static_cast<double>(ns) / 1e6);
  return fmt::format("{:.0f} us", static_cast<double>(ns) / 1e3);
}

std::string Distribution(std::vector<Nanos> values) {
  if (values.empty()) return "(none)";
  const Nanos p50 = Percentile(values, 0.50);
  const Nanos p99 = Percentile(values, 0.99);
  return fmt::format("p50 {}, p99 {}, max {} (n={})", Us(p50), Us(p99), Us(values.back()), values.size());
}

// A path of OWLT 1-2 s, no contact wait, 1 s processing, 10 ppm and 5 ms skew on both clocks: round
// trip 5 s, so any term above ~5 s is grantable.
clock::TimeoutPolicy BenchPolicy() {
  clock::PolicyInputs in;
  in.path.owlt = clock::OwltBound{Duration(1'000), Duration(2'000)};
  in.path.contact_wait_max = Duration(0);
  in.processing_margin = Duration(1'000);
  in.requester.drift_ppm = 10;
  in.requester.skew = Duration(5);
  in.coordinator.drift_ppm = 10;
  in.coordinator.skew = Duration(5);
  return clock::TimeoutPolicy(in);
}

// The SQL a --diagnose item runs on the fresh log ("" for none); fails on an unknown item.
std::string DiagnosticSql(const std::string& what) {
  const auto number = [&](std::size_t prefix) {
    long long value = 0;
    const char* first = what.data() + prefix;
    const char* last = what.data() + what.size();
    const auto [end, error] = std::from_chars(first, last, value);
    if (error != std::errc() || end != last || value <= 0)
      Fail(fmt::format("--diagnose {}: not a positive number", what));
    return value;
  };
  if (what == "no-log") return "";  // handled by the driver
  if (what == "sync-off") return "PRAGMA synchronous=OFF";
  if (what == "no-event-indexes") {
    return "DROP INDEX events_by_resource_in_block; DROP INDEX events_by_rover_in_block; "
           "DROP INDEX events_by_request_in_block; "
           "DROP INDEX events_by_epoch";
  }
  if (what.starts_with("drop-index=")) return fmt::format("DROP INDEX \"{}\"", what.substr(11));
  if (what.starts_with("cache-mib=")) return fmt::format("PRAGMA cache_size=-{}", number(10) * 1024);
  if (what.starts_with("checkpoint=")) return fmt::format("PRAGMA wal_autocheckpoint={}", number(11));
  Fail(fmt::format(
      "--diagnose {}: unknown (sync-off, no-event-indexes, drop-index=NAME, cache-mib=N, checkpoint=N, "
      "no-log)",
      what));
}

// The coordinator under test: the real core, the real SQLite log, in a fresh directory.
class Driver {
 public:
  Driver(const Options& options, std::string_view scenario, Limits limits)
      : keep_(options.keep),
        no_log_(std::find(options.diagnose.begin(), options.diagnose.end(), "no-log") !=
                options.diagnose.end()) {
    std::string templ = fmt::format("{}/ics-cbench-{}-XXXXXX", options.dir, scenario);
    if (::mkdtemp(templ.data()) == nullptr) Fail(fmt::format("mkdtemp {}: {}", templ, std::strerror(errno)));
    dir_ = templ;
    auto log = SqliteLeaseLog::OpenInDirectory(dir_);
    if (!log) Die(log.error().message);
    log_ = std::move(*log);
    for (const std::string& d : options.diagnose) Diagnose(d);
    auto epoch = log_->StartEpoch("bench", kStart);
    if (!epoch) Die(epoch.error().message);
    auto table = log_->LoadState();
    if (!table) Die(table.error().message);
    LeaseCoreConfig config;
    config.self = kCoordinator;
    config.epoch = *epoch;
    config.limits = limits;
    const clock::TimeoutPolicy policy = BenchPolicy();
    core_ = std::make_unique<LeaseCore>(
        config, std::move(*table), [policy](NodeNumber, DtnTime) { return policy; }, kStart);
    Persist(core_->TakeOutput());
    Flush(nullptr);
  }
  ~Driver() {
    core_.reset();
    log_.reset();
    std::error_code ec;
    if (!keep_) std::filesystem::remove_all(dir_, ec);
  }
  Driver(const Driver&) = delete;
  Driver& operator=(const Driver&) = delete;

  Epoch epoch() const { return core_->epoch(); }

  // One decision: Receive, TakeOutput, Stage.
  void Receive(Inbound inbound, DtnTime now) {
    const auto started = WallClock::now();
    core_->Receive(inbound, now);
    Output out = core_->TakeOutput();
    const auto decided = WallClock::now();
    core_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(decided - started).count();
    Persist(std::move(out));
    started_.push_back(started);
  }
  // A timer turn: Tick, TakeOutput, Stage.
  void Tick(DtnTime now) {
    const auto started = WallClock::now();
    core_->Tick(now);
    Output out = core_->TakeOutput();
    core_ns_ += Since(started);
    Persist(std::move(out));
    started_.push_back(started);
  }
  // Commits everything staged (one transaction, one fsync), appends the latency of every decision
  // of the batch to `latencies` (if given), and hands back the batch's messages: sent only now.
  std::vector<Outbound> Flush(std::vector<Nanos>* latencies) {
    const auto started = WallClock::now();
    if (auto ok = log_->Flush(); !ok) Die(ok.error().message);
    const auto done = WallClock::now();
    const Nanos flush_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(done - started).count();
    flush_ns_ += flush_ns;
    flushes_.push_back(flush_ns);
    if (latencies != nullptr) {
      for (const auto& t : started_)
        latencies->push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(done - t).count());
    }
    started_.clear();
    return std::exchange(to_send_, {});
  }

  void ResetCounters() {
    core_ns_ = stage_ns_ = flush_ns_ = 0;
    records_ = 0;
    flushes_.clear();
  }
  Nanos core_ns() const { return core_ns_; }
  Nanos stage_ns() const { return stage_ns_; }
  Nanos flush_ns() const { return flush_ns_; }
  std::uint64_t records() const { return records_; }
  const std::vector<Nanos>& flushes() const { return flushes_; }
  std::uintmax_t FileBytes() const {
    std::uintmax_t total = 0;
    std::error_code ec;
    for (const char* suffix : {"", "-wal"}) {
      const auto size =
          std::filesystem::file_size(fmt::format("{}/{}{}", dir_, kEpochLogFileName, suffix), ec);
      if (!ec) total += size;
    }
    return total;
  }
  const std::string& dir() const { return dir_; }

 private:
  // Fails the run, removing this run's directory first (unless --keep).
  [[noreturn]] void Die(const std::string& what) {
    std::error_code ec;
    if (!keep_) std::filesystem::remove_all(dir_, ec);
    Fail(what);
  }

  void Diagnose(const std::string& what) {
    const std::string sql = DiagnosticSql(what);
    if (sql.empty()) return;
    if (auto ok = log_->database().Exec(sql); !ok)
      Die(fmt::format("--diagnose {}: {}", what, ok.error().message));
  }

  void Persist(Output out) {
    const auto started = WallClock::now();
    records_ += out.to_persist.size();
    if (no_log_) out.to_persist.clear();
    if (auto ok = log_->Stage(std::move(out.to_persist)); !ok) Die(ok.error().message);
    stage_ns_ += Since(started);
    for (auto& o : out.to_send) to_send_.push_back(std::move(o));
  }

  bool keep_;
  bool no_log_;
  std::string dir_;
  std::unique_ptr<SqliteLeaseLog> log_;
  std::unique_ptr<LeaseCore> core_;
  std::vector<WallClock::time_point> started_;
  std::vector<Outbound> to_send_;
  Nanos core_ns_ = 0, stage_ns_ = 0, flush_ns_ = 0;
  std::uint64_t records_ = 0;
  std::vector<Nanos> flushes_;
};

Limits BigLimits(std::size_t resources, std::size_t rovers) {
  Limits limits;
  limits.max_resources = resources + 16;
  limits.max_requesters = rovers + 16;
  return limits;
}

template <typename T>
const T& Expect(const Outbound& o, std::string_view where) {
  const T* m = std::get_if<T>(&o.message);
  if (m == nullptr) Fail(fmt::format("{}: unexpected {} to ipn:{}", where, MessageName(o.message), o.to));
  return *m;
}

void PrintBreakdown(const Driver& d, std::uint64_t decisions) {
  const double n = static_cast<double>(std::max<std::uint64_t>(decisions, 1));
  std::vector<Nanos> flushes = d.flushes();
  fmt::print(
      "    where the time went: core {:.2f} us/decision, Stage {:.2f} us/decision, "
      "Flush {:.2f} us/decision ({:.1f} records/decision)\n",
      static_cast<double>(d.core_ns()) / n / 1e3, static_cast<double>(d.stage_ns()) / n / 1e3,
      static_cast<double>(d.flush_ns()) / n / 1e3, static_cast<double>(d.records()) / n);
  fmt::print("    Flush (commit + fsync) per batch: {}\n", Distribution(std::move(flushes)));
}

// --- pairs ---------------------------------------------------------------------------------------

void RunPairs(const Options& o, std::size_t batch) {
  const std::size_t rovers = std::max(o.rovers, batch);
  const std::size_t per_rover = std::max<std::size_t>(o.resources_per_rover, 1);
  Driver driver(o, "pairs", BigLimits(rovers * per_rover, rovers));
  const Epoch epoch = driver.epoch();

  std::vector<std::vector<ResourceName>> names(rovers);
  for (std::size_t r = 0; r < rovers; ++r) {
    for (std::size_t k = 0; k < per_rover; ++k)
      names[r].push_back(ResourceName{fmt::format("tenant{}", r % 8), fmt::format("pad-{}-{}", r, k)});
  }
  std::vector<RequestId> next_id(rovers, 1);
  std::vector<std::size_t> cycle(rovers, 0);
  const auto acquire_for = [&](std::size_t r, DtnTime now) {
    const NodeNumber node = kFirstRover + r;
    const ResourceName& name = names[r][cycle[r] % per_rover];
    return Inbound{
        node, Acquire{Header{name, epoch, next_id[r], node}, Duration(60'000), now + Duration(3'600'000)}};
  };

  DtnTime now = kStart;
  std::deque<Inbound> ready;
  for (std::size_t r = 0; r < rovers; ++r) ready.push_back(acquire_for(r, now));

  std::vector<Nanos> latencies;
  latencies.reserve(2 * o.pairs + batch);
  std::uint64_t pairs = 0, decisions = 0, batches = 0;
  driver.ResetCounters();
  const Usage usage;
  const auto started = usage.wall;
  while (pairs < o.pairs) {
    now += Duration(1);  // one simulated millisecond per batch
    const std::size_t n = std::min(batch, ready.size());
    for (std::size_t i = 0; i < n; ++i) {
      driver.Receive(std::move(ready.front()), now);
      ready.pop_front();
    }
    decisions += n;
    ++batches;
    // Durable: only now are the answers sent, and the rovers act on them (next batch).
    for (const Outbound& out : driver.Flush(&latencies)) {
      const std::size_t r = out.to - kFirstRover;
      if (std::holds_alternative<Grant>(out.message)) {
        const Grant& g = Expect<Grant>(out, "pairs");
        ready.push_back(
            Inbound{out.to, Release{Header{g.h.resource, epoch, g.h.request_id, out.to}, g.token}});
      } else {
        Expect<Released>(out, "pairs");
        ++pairs;
        ++cycle[r];
        ++next_id[r];
        ready.push_back(acquire_for(r, now));
      }
    }
  }
  const Nanos wall = Since(started);
  fmt::print(
      "  batch {:>5} decisions: {:>9.0f} durable grant+release pairs/s  ({} pairs, {} decisions, "
      "{} batches in {:.2f} s; {} rovers x {} resources)\n",
      batch, static_cast<double>(pairs) / Seconds(wall), pairs, decisions, batches, Seconds(wall), rovers,
      per_rover);
  fmt::print("    decision latency (Receive -> end of the Flush that made it durable): {}\n",
             Distribution(std::move(latencies)));
  PrintBreakdown(driver, decisions);
  fmt::print("    {}\n", CpuLine(usage, static_cast<double>(pairs), "pairs"));
  if (batch >= SqliteLeaseLog::kMaxStagedRecords) {
    fmt::print(
        "    (SqliteLeaseLog commits by itself once {} records are staged: at this batch size the "
        "commit + fsync shows under Stage)\n",
        SqliteLeaseLog::kMaxStagedRecords);
  }
  fmt::print("    epoch log: {:.1f} MiB (db + wal)\n", static_cast<double>(driver.FileBytes()) / (1 << 20));
}

// --- burst expiry --------------------------------------------------------------------------------

void RunBurst(const Options& o, std::size_t leases) {
  const std::size_t rovers = std::min<std::size_t>(leases, 4'000);
  Driver driver(o, "burst", BigLimits(leases, rovers));
  const Epoch epoch = driver.epoch();
  const Duration term(o.term_s * 1000);
  std::vector<RequestId> next_id(rovers, 1);
  for (std::size_t i = 0; i < leases; ++i) {
    const std::size_t r = i % rovers;
    const NodeNumber node = kFirstRover + r;
    driver.Receive(
        Inbound{node, Acquire{Header{{"mars", fmt::format("res-{}", i)}, epoch, next_id[r]++, node}, term,
                              kStart + Duration(3'600'000)}},
        kStart);
    if ((i + 1) % 4096 == 0) driver.Flush(nullptr);
  }
  for (const Outbound& out : driver.Flush(nullptr)) Expect<Grant>(out, "burst grants");
  driver.ResetCounters();

  const Usage usage;
  const auto started = usage.wall;
  driver.Tick(kStart + term);
  std::vector<Nanos> latency;
  const auto sent = driver.Flush(&latency);
  const Nanos wall = Since(started);
  std::size_t expired = 0;
  for (const Outbound& out : sent) expired += std::holds_alternative<ExpiredNotice>(out.message) ? 1 : 0;
  if (expired != leases) Fail(fmt::format("burst: {} of {} leases expired", expired, leases));
  fmt::print(
      "  {:>6} leases expiring at one instant: one Tick + Stage + Flush = {} -> {:.0f} expirations/s "
      "(core {}, Stage {}, Flush {})\n",
      leases, Us(wall), static_cast<double>(leases) / Seconds(wall), Us(driver.core_ns()),
      Us(driver.stage_ns()), Us(driver.flush_ns()));
  fmt::print("    {}\n", CpuLine(usage, static_cast<double>(leases), "expirations"));
}

// --- sustained expiry ----------------------------------------------------------------------------

void RunSustained(const Options& o) {
  const std::size_t per_tick = std::max<std::size_t>(o.rate_per_s * o.tick_ms / 1000, 1);
  const std::size_t population = o.rate_per_s * o.term_s;
  const std::size_t pool = 2 * population + per_tick;  // a freed resource is reused ~2 terms later
  const std::size_t rovers = std::max<std::size_t>(o.sustained_rovers, 1);
  Driver driver(o, "sustained", BigLimits(pool, rovers));
  const Epoch epoch = driver.epoch();
  const Duration term(o.term_s * 1000);
  const Duration tick(o.tick_ms);

  std::vector<ResourceName> names;
  names.reserve(pool);
  for (std::size_t i = 0; i < pool; ++i)
    names.push_back({fmt::format("tenant{}", i % 8), fmt::format("r-{}", i)});
  std::vector<RequestId> next_id(rovers, 1);
  std::size_t cursor = 0;
  const auto acquire = [&](std::size_t r, DtnTime now) {
    const NodeNumber node = kFirstRover + r;
    const ResourceName& name = names[cursor++ % pool];
    driver.Receive(
        Inbound{node, Acquire{Header{name, epoch, next_id[r]++, node}, term, now + Duration(3'600'000)}},
        now);
  };
  const auto expect_grants = [](const std::vector<Outbound>& sent) {
    for (const Outbound& out : sent) Expect<Grant>(out, "sustained grants");
  };

  // Fill: per_tick new leases every tick for one term, so expiries are spread evenly.
  DtnTime now = kStart;
  std::size_t rover = 0;
  const auto fill_started = WallClock::now();
  for (DtnTime end = kStart + term; now < end; now += tick) {
    for (std::size_t i = 0; i < per_tick; ++i) acquire(rover++ % rovers, now);
    expect_grants(driver.Flush(nullptr));
  }
  const Nanos fill_wall = Since(fill_started);
  fmt::print("  fill: {} leases ({} per {} ms tick, term {} s) granted in {:.2f} s ({:.0f} grants/s)\n",
             population, per_tick, o.tick_ms, o.term_s, Seconds(fill_wall),
             static_cast<double>(population) / Seconds(fill_wall));

  // Steady state: each tick expires ~per_tick leases; their holders take fresh resources.
  driver.ResetCounters();
  const std::size_t ticks = o.seconds * 1000 / o.tick_ms;
  std::vector<Nanos> tick_latency;  // Tick -> end of its Flush
  std::vector<Nanos> grant_latency;
  std::vector<std::size_t> expired_per_tick;
  tick_latency.reserve(ticks);
  std::uint64_t expired = 0, granted = 0;
  Nanos tick_wall = 0;
  const Usage usage;
  const auto started = usage.wall;
  for (std::size_t t = 0; t < ticks; ++t) {
    const auto tick_started = WallClock::now();
    driver.Tick(now);
    std::vector<Nanos> one;
    const auto sent = driver.Flush(&one);
    tick_wall += Since(tick_started);
    tick_latency.push_back(one.front());
    std::size_t n = 0;
    for (const Outbound& out : sent) {
      Expect<ExpiredNotice>(out, "sustained tick");
      ++n;
      acquire(out.to - kFirstRover, now);  // the holder was notified: it asks for another resource
    }
    expired += n;
    expired_per_tick.push_back(n);
    const auto grants = driver.Flush(&grant_latency);
    expect_grants(grants);
    granted += grants.size();
    now += tick;
  }
  const Nanos wall = Since(started);
  const double simulated_s = static_cast<double>(ticks * o.tick_ms) / 1000;
  fmt::print(
      "  steady: {} ticks of {} ms ({:.0f} simulated s): {} expirations, {} re-grants in {:.2f} s wall\n",
      ticks, o.tick_ms, simulated_s, expired, granted, Seconds(wall));
  fmt::print(
      "    expirations: {:.0f} /s of Tick+Stage+Flush time; {:.0f} simulated expirations/s; "
      "real time factor {:.2f} (with the re-grants)\n",
      static_cast<double>(expired) / Seconds(tick_wall), static_cast<double>(expired) / simulated_s,
      simulated_s / Seconds(wall));
  fmt::print("    per-Tick latency (Tick -> end of its Flush, ~{} expirations each): {}\n", per_tick,
             Distribution(tick_latency));
  fmt::print("    re-grant decision latency: {}\n", Distribution(std::move(grant_latency)));
  const std::size_t tenth = std::max<std::size_t>(ticks / 10, 1);
  fmt::print("    per-Tick latency by tenth of the run (growth check):\n");
  for (std::size_t part = 0; part * tenth < ticks && part < 10; ++part) {
    const std::size_t end = part == 9 ? ticks : std::min(ticks, (part + 1) * tenth);
    std::vector<Nanos> slice(tick_latency.begin() + static_cast<std::ptrdiff_t>(part * tenth),
                             tick_latency.begin() + static_cast<std::ptrdiff_t>(end));
    const Nanos p50 = Percentile(slice, 0.50);
    const Nanos p99 = Percentile(slice, 0.99);
    fmt::print("      tenth {:>2}{}: p50 {:>9}  p99 {:>9}  max {:>9}\n", part + 1,
               part == 0 ? " (first)" : (part == 9 ? " (last) " : "        "), Us(p50), Us(p99),
               Us(slice.back()));
  }
  PrintBreakdown(driver, expired + granted);
  fmt::print("    {}\n", CpuLine(usage, static_cast<double>(expired), "expirations (with their re-grants)"));
  fmt::print("    epoch log at the end: {:.1f} MiB (db + wal)\n",
             static_cast<double>(driver.FileBytes()) / (1 << 20));
}

int Run(const Options& o) {
  std::error_code ec;
  if (!std::filesystem::is_directory(o.dir, ec)) Fail(fmt::format("--dir {}: not a directory", o.dir));
  for (const std::string& d : o.diagnose) DiagnosticSql(d);  // fails before any temp directory exists
  fmt::print(
      "ics-coordinator-bench: LeaseCore + SqliteLeaseLog (WAL, synchronous=FULL, group commit) in {}\n",
      o.dir);
  fmt::print("load average at start: {} ({} CPUs)\n", Load(), std::thread::hardware_concurrency());
  for (const std::string& d : o.diagnose) fmt::print("DIAGNOSTIC, not the shipped configuration: {}\n", d);
  const auto has = [&](std::string_view s) {
    return std::find(o.scenarios.begin(), o.scenarios.end(), s) != o.scenarios.end();
  };
  if (has("pairs")) {
    fmt::print("\n[pairs] acquire -> grant -> release -> released, every record durable before its answer\n");
    for (std::size_t batch : o.batches) RunPairs(o, std::max<std::size_t>(batch, 1));
  }
  if (has("burst")) {
    fmt::print("\n[burst] leases granted together, expiring together\n");
    for (std::size_t n : o.bursts) RunBurst(o, std::max<std::size_t>(n, 1));
  }
  if (has("sustained")) {
    fmt::print("\n[sustained] ~{} expirations per simulated second, {} s, term {} s, {} rovers\n",
               o.rate_per_s, o.seconds, o.term_s, o.sustained_rovers);
    RunSustained(o);
  }
  fmt::print("\nload average at end: {}\n", Load());
  return 0;
}

}  // namespace
}  // namespace ics::coordinator::bench

int main(int argc, char** argv) {
  CLI::App cli("ics-coordinator-bench: durable lease throughput and latency of the coordinator core",
               "ics-coordinator-bench");
  ics::coordinator::bench::Options o;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);  // figures appear as they are measured, also into a file
  cli.add_option("--dir", o.dir, "where the temporary epoch logs go (a real file system)")
      ->capture_default_str();
  cli.add_flag("--keep", o.keep, "keep the epoch logs");
  cli.add_option("--scenarios", o.scenarios, "pairs, burst, sustained")
      ->delimiter(',')
      ->capture_default_str();
  cli.add_option("--batches", o.batches, "pairs: decisions per group commit")
      ->delimiter(',')
      ->capture_default_str();
  cli.add_option("--pairs", o.pairs, "pairs: grant+release pairs per batch size")->capture_default_str();
  cli.add_option("--rovers", o.rovers, "pairs: rovers (at least the batch size)")->capture_default_str();
  cli.add_option("--resources-per-rover", o.resources_per_rover, "pairs: resources each rover cycles over")
      ->capture_default_str();
  cli.add_option("--bursts", o.bursts, "burst: leases expiring at one instant")
      ->delimiter(',')
      ->capture_default_str();
  cli.add_option("--rate", o.rate_per_s, "sustained: expirations per simulated second")
      ->capture_default_str();
  cli.add_option("--seconds", o.seconds, "sustained: simulated seconds measured")->capture_default_str();
  cli.add_option("--tick-ms", o.tick_ms, "sustained: simulated ms between Ticks")->capture_default_str();
  cli.add_option("--term-s", o.term_s, "lease term, seconds (burst, sustained)")->capture_default_str();
  cli.add_option("--sustained-rovers", o.sustained_rovers, "sustained: rovers")->capture_default_str();
  cli.add_option(
         "--diagnose", o.diagnose,
         "diagnostics (not durable / not shipped): sync-off, no-event-indexes, drop-index=NAME, cache-mib=N, "
         "checkpoint=N, no-log")
      ->delimiter(',');
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  if (o.tick_ms == 0 || o.term_s < 6) {
    std::fprintf(stderr,
                 "ics-coordinator-bench: --tick-ms must be > 0 and --term-s >= 6 (the round trip is 5 s)\n");
    return 2;
  }
  return ics::coordinator::bench::Run(o);
}
