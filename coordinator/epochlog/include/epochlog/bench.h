// The benchmark behind "listing and verifying ten million events takes under 10 s": generates a
// valid epoch log of N events (the real schema, migrated by coordinator::SqliteLeaseLog; rows
// inserted directly, in the coordinator's patterns: grants, renewals, releases, expiries, queued
// waiters, denials, stale-epoch refusals, restarts with restores) and times `leases --csv` to
// /dev/null and `verify` over it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <expected>
#include <string>

#include "epochlog/log_reader.h"

namespace ics::epochlog {

struct GenerateOptions {
  std::uint64_t events = 10'000'000;
  std::uint32_t resources = 2'000;
  std::uint32_t rovers = 64;
  std::uint64_t events_per_epoch = 2'000'000;  // a restart (with restores) after this many
  std::uint64_t seed = 1;
};

// Creates the epoch log at `path` (which must not exist). The log passes Verify.
std::expected<void, Error> GenerateLog(const std::string& path, const GenerateOptions& options);

struct BenchOptions {
  GenerateOptions generate;
  std::string dir;     // where the log goes (created if missing); REQUIRES: non-empty
  bool reuse = true;   // reuse <dir>/epochlog.db if it exists with the same event count
};

// Generates (or reuses) the log, then times the verbs; prints the figures to `report`. Returns
// kExitOk, or kExitError on a failure (printed).
int RunBench(const BenchOptions& options, std::FILE* report);

}  // namespace ics::epochlog
