// The generator writes rows directly (not through LeaseCore + SqliteLeaseLog.Append) because ten
// million events through one fsync'd transaction per batch would take far longer than the thing
// being measured. It follows the coordinator's rules (lease_core.h) so the log verifies: tokens
// rise per resource, grants only on free resources past their regrant time, renewals before
// expiry, expiries at or after it, restores of every open lease and waiter right after each
// restart, and the lease table written to match the events.
#include "epochlog/bench.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <random>
#include <vector>

#include "coordinator/sqlite_lease_log.h"
#include "epochlog/commands.h"
#include "epochlog/output.h"
#include "storage/database.h"

namespace ics::epochlog {
namespace {

constexpr std::int64_t kStartDtnMs = 838'000'000'000;  // 2026-07-21
constexpr std::int64_t kMarginMs = 10;

struct Waiter {
  std::int64_t rover = 0, request_id = 0, term_ms = 0, deadline_ms = 0, queued_at = 0;
};
struct Lease {
  std::int64_t rover = 0, request_id = 0, token = 0, term_ms = 0, expires_ms = 0, epoch = 0, seq = 0;
};
struct Resource {
  std::string name;
  std::int64_t last_token = 0;
  std::int64_t hold_until = 0;
  std::optional<Lease> lease;
  std::deque<Waiter> waiters;
};

Error StorageError(const storage::Error& e) { return FromStorageError(e); }

struct Row {
  std::int64_t at = 0, epoch = 0;
  std::string_view kind;
  const std::string* resource = nullptr;
  std::optional<std::int64_t> rover, request_id, token, expires, term, deadline, regrant_at;
  std::string_view reason, policy;
};

}  // namespace

std::expected<void, Error> GenerateLog(const std::string& path, const GenerateOptions& o) {
  if (std::filesystem::exists(path)) {
    return std::unexpected(Error{Error::Kind::kUsage, fmt::format("{}: exists already", path)});
  }
  {
    auto created = coordinator::SqliteLeaseLog::Open(path);  // the real schema, migrated
    if (!created) return std::unexpected(Error{Error::Kind::kIo, created.error().message});
  }
  storage::OpenOptions options;
  options.durability = storage::Durability::kOff;
  options.create = false;
  auto db = storage::Database::Open(path, options);
  if (!db) return std::unexpected(StorageError(db.error()));
  for (std::string_view pragma : {"PRAGMA journal_mode=OFF", "PRAGMA cache_size=-1000000", "PRAGMA synchronous=OFF"}) {
    auto st = db->Prepare(pragma);
    if (!st) return std::unexpected(StorageError(st.error()));
    if (auto row = st->Step(); !row) return std::unexpected(StorageError(row.error()));
  }
  auto insert = db->Prepare(
      "INSERT INTO events(at_dtn_ms, epoch, kind, tenant, resource, rover, request_id, token, lease_expires_dtn_ms, "
      "term_ms, deadline_dtn_ms, regrant_at_dtn_ms, reason, policy) VALUES(?1, ?2, ?3, 'mars', ?4, ?5, ?6, ?7, ?8, ?9, "
      "?10, ?11, ?12, ?13)");
  auto insert_start = db->Prepare(
      "INSERT INTO events(at_dtn_ms, epoch, kind, reason) VALUES(?1, ?2, 'epoch_start', ?3)");
  auto insert_epoch = db->Prepare("INSERT INTO epochs(epoch, reason, started_dtn_ms) VALUES(?1, ?2, ?3)");
  if (!insert) return std::unexpected(StorageError(insert.error()));
  if (!insert_start) return std::unexpected(StorageError(insert_start.error()));
  if (!insert_epoch) return std::unexpected(StorageError(insert_epoch.error()));
  if (auto ok = db->Exec("BEGIN"); !ok) return std::unexpected(StorageError(ok.error()));

  std::mt19937_64 rng(o.seed);
  std::vector<Resource> resources(std::max<std::uint32_t>(o.resources, 1));
  for (std::size_t i = 0; i < resources.size(); ++i) resources[i].name = fmt::format("site-{:05}", i);
  std::vector<std::int64_t> next_request(std::max<std::uint32_t>(o.rovers, 2) + 2, 1);
  const std::int64_t rovers = std::max<std::uint32_t>(o.rovers, 2);
  const std::string policy =
      "2 x max OWLT 1260s + 2 x contact wait 600s + processing 5s = 3725s; term 7200s leaves 3475s usable after "
      "drift 1ms";
  std::uint64_t written = 0;
  std::int64_t now = kStartDtnMs;
  std::int64_t epoch = 0;
  std::int64_t last_seq = 0;

  const auto put = [&](const Row& r) -> std::expected<void, Error> {
    storage::Statement& st = *insert;
    st.Bind(1, r.at).Bind(2, r.epoch).Bind(3, r.kind).Bind(4, std::string_view(*r.resource));
    st.Bind(5, r.rover).Bind(6, r.request_id).Bind(7, r.token).Bind(8, r.expires).Bind(9, r.term);
    st.Bind(10, r.deadline).Bind(11, r.regrant_at).Bind(12, r.reason).Bind(13, r.policy);
    if (auto ok = st.Run(); !ok) return std::unexpected(StorageError(ok.error()));
    last_seq = db->LastInsertRowId();
    ++written;
    if (written % 1'000'000 == 0) {
      if (auto ok = db->Exec("COMMIT; BEGIN"); !ok) return std::unexpected(StorageError(ok.error()));
    }
    return {};
  };
  const auto start_epoch = [&]() -> std::expected<void, Error> {
    ++epoch;
    const std::string_view reason = epoch == 1 ? "start" : "restart";
    insert_epoch->Bind(1, epoch).Bind(2, reason).Bind(3, now);
    if (auto ok = insert_epoch->Run(); !ok) return std::unexpected(StorageError(ok.error()));
    insert_start->Bind(1, now).Bind(2, epoch).Bind(3, reason);
    if (auto ok = insert_start->Run(); !ok) return std::unexpected(StorageError(ok.error()));
    ++written;
    for (Resource& res : resources) {
      if (res.lease) {
        if (auto ok = put({now, epoch, "restore", &res.name, res.lease->rover, res.lease->request_id,
                           res.lease->token, res.lease->expires_ms, res.lease->term_ms, std::nullopt, std::nullopt,
                           "lease restored from the lease table", policy});
            !ok) {
          return ok;
        }
      }
      for (const Waiter& w : res.waiters) {
        if (auto ok = put({now, epoch, "restore", &res.name, w.rover, w.request_id, std::nullopt, std::nullopt,
                           w.term_ms, w.deadline_ms, std::nullopt, "waiter restored", ""});
            !ok) {
          return ok;
        }
      }
    }
    return {};
  };
  const auto grant = [&](Resource& res, std::int64_t rover, std::int64_t request, std::int64_t term,
                         std::string_view reason) {
    const std::int64_t token = ++res.last_token;
    res.lease = Lease{rover, request, token, term, now + term, epoch, 0};
    auto ok = put({now, epoch, "grant", &res.name, rover, request, token, now + term, term, std::nullopt, std::nullopt,
                   reason, policy});
    res.lease->seq = last_seq;
    return ok;
  };

  if (auto ok = start_epoch(); !ok) return ok;
  std::uint64_t since_restart = 0;
  while (written < o.events) {
    now += static_cast<std::int64_t>(rng() % 40) + 1;
    if (since_restart >= o.events_per_epoch) {
      since_restart = 0;
      if (auto ok = start_epoch(); !ok) return ok;
      continue;
    }
    ++since_restart;
    Resource& res = resources[rng() % resources.size()];
    const std::int64_t rover = static_cast<std::int64_t>(rng() % static_cast<std::uint64_t>(rovers)) + 2;
    const std::int64_t term = 2'000 + static_cast<std::int64_t>(rng() % 20'000);
    const unsigned dice = static_cast<unsigned>(rng() % 100);
    std::expected<void, Error> ok;
    if (res.lease && now >= res.lease->expires_ms) {
      const Lease l = *res.lease;
      res.lease.reset();
      res.hold_until = l.expires_ms + kMarginMs;
      ok = put({now, epoch, "expiry", &res.name, l.rover, l.request_id, l.token, l.expires_ms, l.term_ms, std::nullopt,
                res.hold_until, "expired in the coordinator's view", "drift of both clocks over the term + 1 ms"});
    } else if (res.lease) {
      Lease& l = *res.lease;
      if (dice < 45) {
        l.expires_ms = std::max(l.expires_ms, now + term);
        l.term_ms = term;
        ok = put({now, epoch, "renew", &res.name, l.rover, next_request[l.rover]++, l.token, l.expires_ms, term,
                  std::nullopt, std::nullopt, "renewed", policy});
      } else if (dice < 75) {
        const Lease ended = l;
        res.lease.reset();
        res.hold_until = now;
        ok = put({now, epoch, "release", &res.name, ended.rover, ended.request_id, ended.token, ended.expires_ms,
                  ended.term_ms, std::nullopt, now, "released by the holder: no hold-off", ""});
      } else if (dice < 95 && res.waiters.size() < 4) {
        const Waiter w{rover, next_request[rover]++, term, now + 600'000, now};
        res.waiters.push_back(w);
        ok = put({now, epoch, "queued", &res.name, w.rover, w.request_id, std::nullopt, std::nullopt, term,
                  w.deadline_ms, std::nullopt, fmt::format("queued at position {}", res.waiters.size()), policy});
      } else if (epoch > 1 && dice < 98) {
        ok = put({now, epoch, "stale_epoch", &res.name, rover, next_request[rover]++, std::nullopt, std::nullopt,
                  std::nullopt, std::nullopt, std::nullopt,
                  fmt::format("acquire of epoch {} refused, not acted upon: the current epoch is {}", epoch - 1, epoch),
                  ""});
      } else {
        ok = put({now, epoch, "deny", &res.name, rover, next_request[rover]++, l.token + 1, std::nullopt, std::nullopt,
                  std::nullopt, std::nullopt,
                  fmt::format("not_holder: token {} from node {} is not the current lease", l.token + 1, rover), ""});
      }
    } else if (now < res.hold_until || (dice < 20 && res.waiters.size() < 4)) {
      const Waiter w{rover, next_request[rover]++, term, now + 600'000, now};
      res.waiters.push_back(w);
      ok = put({now, epoch, "queued", &res.name, w.rover, w.request_id, std::nullopt, std::nullopt, term, w.deadline_ms,
                std::nullopt, "queued: regrant hold-off", policy});
    } else if (!res.waiters.empty()) {
      const Waiter w = res.waiters.front();
      res.waiters.pop_front();
      if (dice < 90) {
        ok = grant(res, w.rover, w.request_id, w.term_ms, "granted to the first waiter in the queue");
      } else {
        ok = put({now, epoch, "deny", &res.name, w.rover, w.request_id, std::nullopt, std::nullopt, std::nullopt,
                  w.deadline_ms, std::nullopt, "deadline_passed: deadline passed while queued", ""});
      }
    } else {
      ok = grant(res, rover, next_request[rover]++, term, "granted: the resource was free");
    }
    if (!ok) return ok;
  }

  // The lease table, as SqliteLeaseLog would have left it.
  // (schema version 2: one resource_state row per resource, the lease in its columns)
  auto put_resource = db->Prepare(
      "INSERT INTO resource_state(tenant, resource, last_token, hold_until_dtn_ms) "
      "VALUES('mars', ?1, ?2, ?3)");
  auto put_lease = db->Prepare(
      "UPDATE resource_state SET rover = ?2, request_id = ?3, token = ?4, term_ms = ?5, expires_dtn_ms = ?6, "
      "granted_epoch = ?7, granted_seq = ?8, policy = ?9 WHERE tenant = 'mars' AND resource = ?1");
  auto put_waiter = db->Prepare(
      "INSERT INTO waiters(tenant, resource, rover, request_id, term_ms, deadline_dtn_ms) VALUES('mars', ?1, ?2, ?3, "
      "?4, ?5)");
  if (!put_resource || !put_lease || !put_waiter) {
    return std::unexpected(Error{Error::Kind::kIo, "cannot prepare the lease table inserts"});
  }
  for (const Resource& res : resources) {
    if (res.last_token == 0 && res.waiters.empty()) continue;
    put_resource->Bind(1, std::string_view(res.name)).Bind(2, res.last_token).Bind(3, res.hold_until);
    if (auto ok = put_resource->Run(); !ok) return std::unexpected(StorageError(ok.error()));
    if (res.lease) {
      const Lease& l = *res.lease;
      put_lease->Bind(1, std::string_view(res.name)).Bind(2, l.rover).Bind(3, l.request_id).Bind(4, l.token);
      put_lease->Bind(5, l.term_ms).Bind(6, l.expires_ms).Bind(7, l.epoch).Bind(8, l.seq).Bind(9, std::string_view(policy));
      if (auto ok = put_lease->Run(); !ok) return std::unexpected(StorageError(ok.error()));
    }
    for (const Waiter& w : res.waiters) {
      put_waiter->Bind(1, std::string_view(res.name)).Bind(2, w.rover).Bind(3, w.request_id).Bind(4, w.term_ms);
      put_waiter->Bind(5, w.deadline_ms);
      if (auto ok = put_waiter->Run(); !ok) return std::unexpected(StorageError(ok.error()));
    }
  }
  if (auto ok = db->Exec("COMMIT"); !ok) return std::unexpected(StorageError(ok.error()));
  // Back to WAL, as the coordinator keeps it.
  auto wal = db->Prepare("PRAGMA journal_mode=WAL");
  if (!wal) return std::unexpected(StorageError(wal.error()));
  if (auto row = wal->Step(); !row) return std::unexpected(StorageError(row.error()));
  return {};
}

namespace {

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

int RunBench(const BenchOptions& options, std::FILE* report) {
  namespace fs = std::filesystem;
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  const std::string path = (fs::path(options.dir) / coordinator::kEpochLogFileName).string();
  bool reuse = false;
  if (fs::exists(path) && options.reuse) {
    if (auto reader = LogReader::Open(path); reader) {
      if (auto st = reader->Prepare("SELECT count(*) FROM events"); st && st->Step().value_or(false)) {
        reuse = static_cast<std::uint64_t>(st->Int(0)) == options.generate.events;
      }
    }
  }
  if (!reuse) {
    for (const char* suffix : {"", "-wal", "-shm"}) fs::remove(path + suffix, ec);
    const auto t0 = std::chrono::steady_clock::now();
    if (auto ok = GenerateLog(path, options.generate); !ok) {
      std::fprintf(report, "bench: generating %s failed: %s\n", path.c_str(), ok.error().message.c_str());
      return kExitError;
    }
    std::fprintf(report, "generated %llu events in %s in %.1f s\n",
                 static_cast<unsigned long long>(options.generate.events), path.c_str(), Seconds(t0));
  } else {
    std::fprintf(report, "reusing %s (%llu events)\n", path.c_str(),
                 static_cast<unsigned long long>(options.generate.events));
  }
  std::fprintf(report, "file size: %.1f MiB\n", static_cast<double>(fs::file_size(path, ec)) / (1024.0 * 1024.0));

  std::FILE* null = std::fopen("/dev/null", "w");
  if (null == nullptr) return kExitError;
  {
    const auto t0 = std::chrono::steady_clock::now();
    auto reader = LogReader::Open(path);
    if (!reader) {
      std::fprintf(report, "bench: %s\n", reader.error().message.c_str());
      std::fclose(null);
      return kExitError;
    }
    FileSink sink(null);
    auto ok = ListLeases(*reader, sink, OutputOptions{Format::kCsv, TimeStyle::kUtc}, LeaseQuery{});
    sink.Finish();
    std::fprintf(report, "leases --csv > /dev/null: %.2f s%s\n", Seconds(t0), ok ? "" : " (FAILED)");
  }
  std::fclose(null);
  int status = kExitOk;
  for (const auto integrity : {VerifyOptions::Integrity::kQuick, VerifyOptions::Integrity::kNone}) {
    const auto t0 = std::chrono::steady_clock::now();
    auto reader = LogReader::Open(path);
    if (!reader) return kExitError;
    VerifyOptions vo;
    vo.integrity = integrity;
    auto result = Verify(*reader, vo);
    const double took = Seconds(t0);
    if (!result) {
      std::fprintf(report, "verify failed: %s\n", result.error().message.c_str());
      return kExitError;
    }
    std::fprintf(report, "verify%s: %.2f s: %llu events, %llu violations%s\n",
                 integrity == VerifyOptions::Integrity::kNone ? " --no-integrity-check" : " (quick_check)", took,
                 static_cast<unsigned long long>(result->events),
                 static_cast<unsigned long long>(result->violation_count),
                 result->violations.empty() ? "" : fmt::format(" (first: seq {} {})", result->violations[0].seq,
                                                               result->violations[0].message).c_str());
    if (!result->ok()) status = kExitViolations;
  }
  return status;
}

}  // namespace ics::epochlog
