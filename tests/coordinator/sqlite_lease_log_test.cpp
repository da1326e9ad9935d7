// Goal: the SQLite epoch log stores exactly what the in-memory log does, survives reopening with
// rising epochs, is append-only, and refuses files that are not its own.
// Method: drive a lease core through a scripted session, append its records to both logs, and
// compare the reloaded lease tables; poke the database file directly for the refusals.
#include "coordinator/sqlite_lease_log.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

#include "core_harness.h"
#include "storage/database.h"
#include "storage/epoch_store.h"
#include "storage/schema.h"

namespace ics::coordinator::testing {
namespace {

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/ics-coordinator-XXXXXX";
    const char* made = mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path = made;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::string File(std::string_view name) const { return (std::filesystem::path(path) / name).string(); }
  std::string path;
};

std::unique_ptr<SqliteLeaseLog> OpenLog(const TempDir& dir) {
  auto log = SqliteLeaseLog::OpenInDirectory(dir.path);
  REQUIRE_MESSAGE(log.has_value(), log.error().message);
  return std::move(*log);
}

std::int64_t Count(SqliteLeaseLog& log, std::string_view where = "1") {
  auto n = log.database().QueryInt(fmt::format("SELECT count(*) FROM events WHERE {}", where));
  REQUIRE(n.has_value());
  return n->value_or(-1);
}

const ResourceName kPad{"mars", "charging_pad"};
const ResourceName kDrill{"mars", "drill"};
const ResourceName kOtherPad{"moon", "charging_pad"};
const DtnTime kFar = kT0 + Duration(86'400'000);

// A session touching every kind of event and leaving leases, waiters and hold-offs behind.
void Session(Harness& h) {
  h.default_inputs.requester.drift_ppm = 100;
  h.default_inputs.requester.skew = 1s;
  h.AcquireAt(2, 1, kPad, 600s, kFar, kT0);                 // grant token 1
  h.AcquireAt(3, 1, kPad, 600s, kFar, kT0 + 1s);            // queued 1
  h.AcquireAt(4, 1, kPad, 600s, kT0 + 100s, kT0 + 2s);      // queued 2, gives up at 99 s
  h.AcquireAt(5, 1, kPad, 600s, kFar, kT0 + 3s);            // queued 3
  h.AcquireAt(2, 2, kDrill, 60s, kFar, kT0 + 4s);           // grant token 1
  h.AcquireAt(3, 2, kOtherPad, 600s, kFar, kT0 + 5s);       // grant token 1 (other tenant)
  h.AcquireAt(6, 1, kDrill, 5s, kFar, kT0 + 6s);            // deny: term too short
  h.RenewAt(2, 1, kPad, 1, 600s, kT0 + 50s);                // renew to 650 s
  h.RenewAt(2, 2, kDrill, 1, 60s, kT0 + 50s, /*epoch=*/0);  // deny: epoch 0 renew
  h.TickAt(kT0 + 99s);                                      // drill expires (64 s), waiter 4 dropped
  h.ReleaseAt(3, 2, kOtherPad, 1, kT0 + 100s);              // release
  h.ReleaseAt(2, 1, kPad, 1, kT0 + 300s);                   // pad: release, grant token 2 to 3
  h.AcquireAt(6, 2, kDrill, 60s, kFar, kT0 + 301s);         // drill: grant token 2
}

TEST_CASE("epoch log: append and reload gives the same lease table as the in-memory log and the core") {
  TempDir dir;
  auto log = OpenLog(dir);
  CHECK(log->path() == dir.File("epochlog.db"));
  REQUIRE(log->StartEpoch("start", kT0).value() == 1);
  Harness h;
  Session(h);
  const auto& records = h.log->events();
  REQUIRE(records.size() == 15);  // 5 grants, 3 queued, 3 denies, renew, expiry, 2 releases
  // In a few batches, as a driver's group commits would.
  const std::span<const LogRecord> all(records);
  REQUIRE(log->Append(all.subspan(0, 5)).has_value());
  REQUIRE(log->Stage(all.subspan(5, 5)).has_value());
  REQUIRE(log->Stage(all.subspan(10)).has_value());
  REQUIRE(log->Flush().has_value());

  const LeaseTable from_sqlite = log->LoadState().value();
  CHECK(from_sqlite == h.log->LoadState().value());
  CHECK(from_sqlite == h.core->Snapshot());
  CHECK(from_sqlite.resources.at(kPad).lease->token == 2);
  CHECK(from_sqlite.resources.at(kPad).waiters.size() == 1);  // node 5
  CHECK(from_sqlite.resources.at(kOtherPad).hold_until == kT0 + 100s);

  CHECK(Count(*log) == static_cast<std::int64_t>(records.size()) + 1);
  CHECK(Count(*log, "kind = 'grant'") == 5);
  CHECK(Count(*log, "kind = 'expiry' AND regrant_at_dtn_ms IS NOT NULL") == 1);
  CHECK(Count(*log, "kind = 'deny' AND reason LIKE 'deadline_passed:%' AND deadline_dtn_ms IS NOT NULL") ==
        1);
  CHECK(Count(*log, "kind = 'epoch_start' AND tenant IS NULL AND token IS NULL") == 1);
  auto row = log->database().Prepare(
      "SELECT epoch, rover, request_id, token, lease_expires_dtn_ms, term_ms, policy FROM events "
      "WHERE kind = 'grant' ORDER BY seq LIMIT 1");
  REQUIRE(row.has_value());
  REQUIRE(row->Step().value());
  CHECK(row->Int(0) == 1);
  CHECK(row->Int(1) == 2);
  CHECK(row->Int(2) == 1);
  CHECK(row->Int(3) == 1);
  CHECK(row->Int(4) == (kT0 + 600s).millis());
  CHECK(row->Int(5) == 600'000);
  CHECK(row->Text(6).find("granted") != std::string::npos);
}

TEST_CASE("epoch log: epochs rise across reopen and a restarted core continues the tokens") {
  TempDir dir;
  {
    auto log = OpenLog(dir);
    REQUIRE(log->CurrentEpoch().value() == 0);
    REQUIRE(log->StartEpoch("start", kT0).value() == 1);
    Harness h;
    Session(h);
    REQUIRE(log->Append(h.log->events()).has_value());
  }  // "crash"
  auto log = OpenLog(dir);
  CHECK(log->CurrentEpoch().value() == 1);
  REQUIRE(log->StartEpoch("restart", kT0 + 400s).value() == 2);
  CHECK(Count(*log, "kind = 'epoch_start'") == 2);
  CHECK(Count(*log, "kind = 'epoch_start' AND epoch = 2 AND reason = 'restart'") == 1);
  auto max_epoch = log->database().QueryInt("SELECT max(epoch) FROM epochs");
  REQUIRE(max_epoch.has_value());
  CHECK(max_epoch->value_or(0) == 2);

  Harness h(2, {}, log->LoadState().value(), kT0 + 400s);
  REQUIRE(log->Append(h.last_persisted).has_value());
  CHECK(Count(*log, "kind = 'restore' AND epoch = 2") == 3);  // pad lease + waiter, drill lease
  // The restored pad lease (token 2, expires 900 s) holds; its waiter is next; tokens continue.
  CHECK(Only<ExpiredNotice>(h.TickAt(kT0 + 400s), 6).token == 2);  // the restored drill lease
  const auto out = h.ReleaseAt(3, 1, kPad, 2, kT0 + 401s);
  REQUIRE(out.size() == 2);
  CHECK(std::get<Released>(out[0].message).token == 2);
  CHECK(out[1].to == 5);
  const Grant g = std::get<Grant>(out[1].message);
  CHECK(g.token == 3);
  CHECK(g.h.epoch == 2);
}

TEST_CASE("epoch log: events cannot be deleted, and the coordinator never updates them") {
  TempDir dir;
  auto log = OpenLog(dir);
  REQUIRE(log->StartEpoch("start", kT0).has_value());
  Harness h;
  Session(h);
  REQUIRE(log->Append(h.log->events()).has_value());
  const auto before = Count(*log);
  // No trigger refuses UPDATE: an operator may edit a copy (and ics-epochlog verify then names the
  // edited rows); the coordinator itself only ever inserts.
  auto remove = log->database().Exec("DELETE FROM events WHERE kind = 'deny'");
  REQUIRE_FALSE(remove.has_value());
  CHECK(remove.error().message.find("append-only") != std::string::npos);
  CHECK(Count(*log) == before);
}

// Copies the log at `from` into a new file at `to` in schema version 1 (as builds before version 2
// wrote it): the same events, lease table, waiters and epochs.
void WriteVersion1Copy(const std::string& from, const std::string& to) {
  auto db = storage::Database::Open(to);
  REQUIRE(db.has_value());
  const storage::SchemaSpec& spec = EpochLogSchema();
  const storage::SchemaSpec v1{spec.name, spec.application_id, spec.migrations.first(1)};
  REQUIRE(storage::Migrate(*db, v1).has_value());
  REQUIRE(storage::EpochStore::Open(*db).has_value());
  auto ok = db->Exec(fmt::format(
      "ATTACH '{}' AS src; INSERT INTO main.events SELECT * FROM src.events; "
      "INSERT INTO main.resources SELECT * FROM src.resources; INSERT INTO main.leases SELECT * FROM "
      "src.leases; "
      "INSERT INTO main.waiters SELECT * FROM src.waiters; INSERT INTO main.epochs SELECT * FROM src.epochs; "
      "DETACH src",
      from));
  REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
}

std::int64_t SchemaCount(storage::Database& db, std::string_view where) {
  auto n = db.QueryInt(fmt::format("SELECT count(*) FROM sqlite_schema WHERE {}", where));
  REQUIRE(n.has_value());
  return n->value_or(-1);
}

TEST_CASE("epoch log: a version-1 log is migrated to version 2 with its events and lease table intact") {
  TempDir dir;
  Harness h;
  LeaseTable before;
  {
    auto log = OpenLog(dir);
    REQUIRE(log->StartEpoch("start", kT0).value() == 1);
    Session(h);
    REQUIRE(log->Append(h.log->events()).has_value());
    before = log->LoadState().value();
  }
  WriteVersion1Copy(dir.File("epochlog.db"), dir.File("v1.db"));
  {
    auto v1 = storage::Database::Open(dir.File("v1.db"));
    REQUIRE(v1.has_value());
    CHECK(v1->QueryInt("PRAGMA user_version")->value_or(0) == 1);
    CHECK(SchemaCount(*v1, "type = 'table' AND name IN ('resources', 'leases')") == 2);
  }

  auto opened = SqliteLeaseLog::Open(dir.File("v1.db"));
  REQUIRE_MESSAGE(opened.has_value(), opened.error().message);
  SqliteLeaseLog& log = **opened;
  storage::Database& db = log.database();
  CHECK(db.QueryInt("PRAGMA user_version")->value_or(0) == 2);
  CHECK(SchemaCount(db, "name IN ('events_by_resource', 'events_by_rover', 'events_by_request')") == 0);
  CHECK(SchemaCount(db, "type = 'index' AND name LIKE 'events\\_by\\_%\\_in\\_block' ESCAPE '\\'") == 3);
  CHECK(SchemaCount(db, "type = 'view' AND name IN ('resources', 'leases')") == 2);
  CHECK(Count(log) == static_cast<std::int64_t>(h.log->events().size()) + 1);
  CHECK(log.LoadState().value() == before);
  CHECK(log.CurrentEpoch().value() == 1);

  // It goes on as a version-2 log: the waiter queued before the migration is granted (and leaves
  // the queue) when the holder releases after a restart.
  REQUIRE(log.StartEpoch("restart", kT0 + 400s).value() == 2);
  auto memory = std::make_shared<InMemoryLeaseLog>();
  REQUIRE(memory->Append(h.log->events()).has_value());
  Harness after(2, {}, log.LoadState().value(), kT0 + 400s, memory);
  REQUIRE(log.Append(after.last_persisted).has_value());
  after.ReleaseAt(3, 1, kPad, 2, kT0 + 401s);  // pad: release token 2, grant token 3 to node 5
  REQUIRE(log.Append(after.last_persisted).has_value());
  const LeaseTable now = log.LoadState().value();
  CHECK(now == memory->LoadState().value());
  CHECK(now == after.core->Snapshot());
  CHECK(now.resources.at(kPad).lease->holder == 5);
  CHECK(now.resources.at(kPad).lease->token == 3);
  CHECK(now.resources.at(kPad).waiters.empty());
}

TEST_CASE(
    "epoch log: records staged without a copy are all written by one Flush, and a batch too big flushes "
    "itself") {
  TempDir dir;
  auto log = OpenLog(dir);
  REQUIRE(log->StartEpoch("start", kT0).value() == 1);
  Harness h;
  Session(h);
  std::vector<LogRecord> records = h.log->events();
  const auto n = static_cast<std::int64_t>(records.size());
  REQUIRE(log->Stage(std::move(records)).has_value());
  CHECK(records.empty());
  CHECK(log->staged() == static_cast<std::size_t>(n));
  CHECK(Count(*log) == 1);  // nothing written before the Flush
  REQUIRE(log->Flush().has_value());
  CHECK(log->staged() == 0);
  CHECK(Count(*log) == n + 1);
  CHECK(log->LoadState().value() == h.log->LoadState().value());

  LogRecord refused;
  refused.kind = EventKind::kStaleEpoch;
  refused.at = kT0 + 500s;
  refused.epoch = 1;
  refused.resource = kDrill;
  refused.reason = "stale";
  const std::vector<LogRecord> many(SqliteLeaseLog::kMaxStagedRecords, refused);
  REQUIRE(log->Stage(many).has_value());
  CHECK(log->staged() == 0);  // the full batch committed itself
  CHECK(Count(*log, "kind = 'stale_epoch'") == static_cast<std::int64_t>(SqliteLeaseLog::kMaxStagedRecords));
}

TEST_CASE("epoch log: a foreign or newer or non-SQLite file is refused and left untouched") {
  TempDir dir;
  {
    auto foreign = storage::Database::Open(dir.File("foreign.db"));
    REQUIRE(foreign.has_value());
    REQUIRE(foreign->Exec("CREATE TABLE bundles(id INTEGER)").has_value());
  }
  auto refused = SqliteLeaseLog::Open(dir.File("foreign.db"));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().message.find("not a coordinator epoch log") != std::string::npos);
  {
    auto still = storage::Database::Open(dir.File("foreign.db"));
    REQUIRE(still.has_value());
    CHECK(still->QueryInt("SELECT count(*) FROM sqlite_schema WHERE name = 'events'")->value_or(-1) == 0);
  }

  {
    auto log = OpenLog(dir);
    REQUIRE(log->database().Exec("PRAGMA user_version = 3").has_value());
  }
  auto newer = SqliteLeaseLog::OpenInDirectory(dir.path);
  REQUIRE_FALSE(newer.has_value());
  CHECK(newer.error().message.find("newer") != std::string::npos);

  {
    std::ofstream junk(dir.File("junk.db"), std::ios::binary);
    junk << std::string(4096, 'x');
  }
  CHECK_FALSE(SqliteLeaseLog::Open(dir.File("junk.db")).has_value());
  CHECK(std::filesystem::file_size(dir.File("junk.db")) == 4096);
}

}  // namespace
}  // namespace ics::coordinator::testing
