// The epoch log in SQLite, through ics::storage only (no <sqlite3.h> here: the layering check).
//
// Why the table-per-state design: the events table grows without end (millions of rows over a
// mission), so restart must not replay it. Each Append writes the events AND applies their state
// changes to the resources/leases/waiters tables in the same transaction, with the same rules as
// ApplyToTable (lease_log.cpp); the tests hold the two to equality.
//
// Unsigned 64-bit values (node numbers, request ids, tokens) are stored as SQLite's signed
// INTEGER by two's complement; values below 2^63 (all real ones) read as themselves.
#include "coordinator/sqlite_lease_log.h"

#include <fmt/format.h>

#include <array>
#include <optional>
#include <utility>
#include <vector>

#include "storage/epoch_store.h"
#include "storage/group_commit.h"

namespace ics::coordinator {
namespace {

// Version 1. A later version is a new entry; never edit a released one.
constexpr std::string_view kSchemaV1 = R"sql(
CREATE TABLE events (
  seq                  INTEGER PRIMARY KEY,
  at_dtn_ms            INTEGER NOT NULL,
  epoch                INTEGER NOT NULL,
  kind                 TEXT    NOT NULL,
  tenant               TEXT,
  resource             TEXT,
  rover                INTEGER,
  request_id           INTEGER,
  token                INTEGER,
  lease_expires_dtn_ms INTEGER,
  term_ms              INTEGER,
  deadline_dtn_ms      INTEGER,
  regrant_at_dtn_ms    INTEGER,
  reason               TEXT    NOT NULL DEFAULT '',
  policy               TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX events_by_resource ON events(tenant, resource, seq);
CREATE INDEX events_by_rover ON events(rover, seq);
CREATE INDEX events_by_request ON events(request_id);
CREATE INDEX events_by_epoch ON events(epoch);
CREATE INDEX events_epoch_starts ON events(epoch) WHERE kind = 'epoch_start';
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
  BEGIN SELECT RAISE(ABORT, 'the epoch log is append-only: events cannot be deleted'); END;

CREATE TABLE resources (
  tenant            TEXT    NOT NULL,
  resource          TEXT    NOT NULL,
  last_token        INTEGER NOT NULL,
  hold_until_dtn_ms INTEGER NOT NULL,
  PRIMARY KEY (tenant, resource)
) WITHOUT ROWID;
CREATE TABLE leases (
  tenant         TEXT    NOT NULL,
  resource       TEXT    NOT NULL,
  rover          INTEGER NOT NULL,
  request_id     INTEGER NOT NULL,
  token          INTEGER NOT NULL,
  term_ms        INTEGER NOT NULL,
  expires_dtn_ms INTEGER NOT NULL,
  granted_epoch  INTEGER NOT NULL,
  granted_seq    INTEGER NOT NULL,
  policy         TEXT    NOT NULL,
  PRIMARY KEY (tenant, resource)
) WITHOUT ROWID;
CREATE TABLE waiters (
  queue_seq       INTEGER PRIMARY KEY,
  tenant          TEXT    NOT NULL,
  resource        TEXT    NOT NULL,
  rover           INTEGER NOT NULL,
  request_id      INTEGER NOT NULL,
  term_ms         INTEGER NOT NULL,
  deadline_dtn_ms INTEGER NOT NULL,
  UNIQUE (tenant, resource, rover, request_id)
);
)sql";

constexpr std::array<storage::Migration, 1> kMigrations = {storage::Migration{1, kSchemaV1}};
constexpr storage::SchemaSpec kSpec{"coordinator epoch log", kEpochLogApplicationId, kMigrations};

// Bound on any text read back from the file (names, reasons): the file is untrusted too.
constexpr std::size_t kMaxStoredText = 64 * 1024;

LogError FromStorage(const storage::Error& error) { return LogError{error.message}; }

template <typename T>
std::int64_t Signed(T value) {
  return static_cast<std::int64_t>(value);
}

}  // namespace

const storage::SchemaSpec& EpochLogSchema() { return kSpec; }

struct SqliteLeaseLog::Impl {
  explicit Impl(storage::Database database) : db(std::move(database)), group(db) {}

  storage::Database db;
  std::optional<storage::EpochStore> epochs;
  storage::GroupCommit group;

  // Prepared once, reused for every record.
  struct Statements {
    storage::Statement insert_event, upsert_token, ensure_resource, put_lease, delete_waiter, add_waiter,
        renew_lease, end_lease, set_hold;
  };
  std::optional<Statements> st;

  storage::Status Prepare();
  storage::Status Write(const LogRecord& record);
};

storage::Status SqliteLeaseLog::Impl::Prepare() {
  const std::array<std::pair<storage::Statement Statements::*, std::string_view>, 9> sql = {{
      {&Statements::insert_event,
       "INSERT INTO events(at_dtn_ms, epoch, kind, tenant, resource, rover, request_id, token, "
       "lease_expires_dtn_ms, term_ms, deadline_dtn_ms, regrant_at_dtn_ms, reason, policy) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"},
      {&Statements::upsert_token,
       "INSERT INTO resources(tenant, resource, last_token, hold_until_dtn_ms) VALUES(?1, ?2, ?3, 0) "
       "ON CONFLICT(tenant, resource) DO UPDATE SET last_token = max(last_token, excluded.last_token)"},
      {&Statements::ensure_resource,
       "INSERT INTO resources(tenant, resource, last_token, hold_until_dtn_ms) VALUES(?1, ?2, 0, 0) "
       "ON CONFLICT(tenant, resource) DO NOTHING"},
      {&Statements::put_lease,
       "INSERT OR REPLACE INTO leases(tenant, resource, rover, request_id, token, term_ms, expires_dtn_ms, "
       "granted_epoch, granted_seq, policy) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"},
      {&Statements::delete_waiter,
       "DELETE FROM waiters WHERE tenant = ?1 AND resource = ?2 AND rover = ?3 AND request_id = ?4"},
      {&Statements::add_waiter,
       "INSERT INTO waiters(queue_seq, tenant, resource, rover, request_id, term_ms, deadline_dtn_ms) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
      {&Statements::renew_lease,
       "UPDATE leases SET expires_dtn_ms = ?4, term_ms = ?5, policy = ?6 "
       "WHERE tenant = ?1 AND resource = ?2 AND token = ?3"},
      {&Statements::end_lease, "DELETE FROM leases WHERE tenant = ?1 AND resource = ?2 AND token = ?3"},
      {&Statements::set_hold,
       "UPDATE resources SET hold_until_dtn_ms = ?3 WHERE tenant = ?1 AND resource = ?2"},
  }};
  Statements statements;
  for (const auto& [member, text] : sql) {
    auto prepared = db.Prepare(text);
    if (!prepared) return std::unexpected(std::move(prepared.error()));
    statements.*member = std::move(*prepared);
  }
  st = std::move(statements);
  return {};
}

storage::Status SqliteLeaseLog::Impl::Write(const LogRecord& r) {
  Statements& s = *st;
  const bool has_resource = !r.resource.tenant.empty();
  const auto text_or_null = [](storage::Statement& stmt, int index, const std::string& text, bool present) {
    if (present) {
      stmt.Bind(index, std::string_view(text));
    } else {
      stmt.BindNull(index);
    }
  };
  const auto ms = [](const std::optional<clock::DtnTime>& t) -> std::optional<std::int64_t> {
    if (!t) return std::nullopt;
    return t->millis();
  };
  const auto u64 = [](const std::optional<std::uint64_t>& v) -> std::optional<std::int64_t> {
    if (!v) return std::nullopt;
    return Signed(*v);
  };
  std::optional<std::int64_t> term_ms;
  if (r.term) term_ms = r.term->count();

  storage::Statement& ev = s.insert_event;
  ev.Bind(1, r.at.millis()).Bind(2, Signed(r.epoch)).Bind(3, EventKindName(r.kind));
  text_or_null(ev, 4, r.resource.tenant, has_resource);
  text_or_null(ev, 5, r.resource.resource, has_resource);
  ev.Bind(6, u64(r.rover)).Bind(7, u64(r.request_id)).Bind(8, u64(r.token)).Bind(9, ms(r.lease_expires));
  ev.Bind(10, term_ms).Bind(11, ms(r.deadline)).Bind(12, ms(r.regrant_at));
  ev.Bind(13, std::string_view(r.reason)).Bind(14, std::string_view(r.policy));
  if (auto ok = ev.Run(); !ok) return ok;
  const std::int64_t seq = db.LastInsertRowId();

  const std::string_view tenant = r.resource.tenant;
  const std::string_view resource = r.resource.resource;
  switch (r.kind) {
    case EventKind::kEpochStart:
    case EventKind::kRestore:
    case EventKind::kStaleEpoch:
      return {};
    case EventKind::kGrant: {
      if (!r.token || !r.rover || !r.request_id || !r.lease_expires || !r.term) return {};
      if (auto ok = s.upsert_token.Bind(1, tenant).Bind(2, resource).Bind(3, Signed(*r.token)).Run(); !ok)
        return ok;
      s.put_lease.Bind(1, tenant).Bind(2, resource).Bind(3, Signed(*r.rover)).Bind(4, Signed(*r.request_id));
      s.put_lease.Bind(5, Signed(*r.token)).Bind(6, r.term->count()).Bind(7, r.lease_expires->millis());
      s.put_lease.Bind(8, Signed(r.epoch)).Bind(9, seq).Bind(10, std::string_view(r.policy));
      if (auto ok = s.put_lease.Run(); !ok) return ok;
      return s.delete_waiter.Bind(1, tenant)
          .Bind(2, resource)
          .Bind(3, Signed(*r.rover))
          .Bind(4, Signed(*r.request_id))
          .Run();
    }
    case EventKind::kQueued: {
      if (!r.rover || !r.request_id || !r.term || !r.deadline) return {};
      if (auto ok = s.ensure_resource.Bind(1, tenant).Bind(2, resource).Run(); !ok) return ok;
      s.add_waiter.Bind(1, seq).Bind(2, tenant).Bind(3, resource).Bind(4, Signed(*r.rover));
      s.add_waiter.Bind(5, Signed(*r.request_id)).Bind(6, r.term->count()).Bind(7, r.deadline->millis());
      return s.add_waiter.Run();
    }
    case EventKind::kRenew: {
      if (!r.token || !r.lease_expires || !r.term) return {};
      s.renew_lease.Bind(1, tenant)
          .Bind(2, resource)
          .Bind(3, Signed(*r.token))
          .Bind(4, r.lease_expires->millis());
      s.renew_lease.Bind(5, r.term->count()).Bind(6, std::string_view(r.policy));
      return s.renew_lease.Run();
    }
    case EventKind::kRelease:
    case EventKind::kExpiry: {
      if (!r.token || !r.regrant_at) return {};
      if (auto ok = s.end_lease.Bind(1, tenant).Bind(2, resource).Bind(3, Signed(*r.token)).Run(); !ok)
        return ok;
      if (db.Changes() == 0) return {};  // not the current lease: nothing changes (as ApplyToTable)
      return s.set_hold.Bind(1, tenant).Bind(2, resource).Bind(3, r.regrant_at->millis()).Run();
    }
    case EventKind::kDeny: {
      if (!r.rover || !r.request_id || !has_resource) return {};
      return s.delete_waiter.Bind(1, tenant)
          .Bind(2, resource)
          .Bind(3, Signed(*r.rover))
          .Bind(4, Signed(*r.request_id))
          .Run();
    }
  }
  return {};
}

SqliteLeaseLog::SqliteLeaseLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteLeaseLog::~SqliteLeaseLog() = default;

std::expected<std::unique_ptr<SqliteLeaseLog>, LogError> SqliteLeaseLog::Open(const std::string& path) {
  storage::OpenOptions options;
  options.durability = storage::Durability::kFull;
  auto db = storage::Database::Open(path, options);
  if (!db) return std::unexpected(FromStorage(db.error()));
  if (auto ok = storage::Migrate(*db, kSpec); !ok) return std::unexpected(FromStorage(ok.error()));
  auto impl = std::make_unique<Impl>(std::move(*db));
  auto epochs = storage::EpochStore::Open(impl->db);
  if (!epochs) return std::unexpected(FromStorage(epochs.error()));
  impl->epochs.emplace(std::move(*epochs));
  if (auto ok = impl->Prepare(); !ok) return std::unexpected(FromStorage(ok.error()));
  return std::unique_ptr<SqliteLeaseLog>(new SqliteLeaseLog(std::move(impl)));
}

std::expected<std::unique_ptr<SqliteLeaseLog>, LogError> SqliteLeaseLog::OpenInDirectory(
    const std::string& data_dir) {
  return Open(fmt::format("{}/{}", data_dir, kEpochLogFileName));
}

const std::string& SqliteLeaseLog::path() const { return impl_->db.path(); }
storage::Database& SqliteLeaseLog::database() { return impl_->db; }

std::expected<Epoch, LogError> SqliteLeaseLog::StartEpoch(std::string_view reason, clock::DtnTime now) {
  // Anything staged belongs to the previous epoch's core: commit it before the epoch moves on.
  if (auto ok = Flush(); !ok) return std::unexpected(ok.error());
  auto epoch = impl_->epochs->IncrementAndSync(reason, now.millis());
  if (!epoch) return std::unexpected(FromStorage(epoch.error()));
  LogRecord record;
  record.kind = EventKind::kEpochStart;
  record.at = now;
  record.epoch = *epoch;
  record.reason = std::string(reason);
  if (auto ok = Append(std::span<const LogRecord>(&record, 1)); !ok) return std::unexpected(ok.error());
  return *epoch;
}

std::expected<Epoch, LogError> SqliteLeaseLog::CurrentEpoch() const {
  auto epoch = impl_->epochs->Current();
  if (!epoch) return std::unexpected(FromStorage(epoch.error()));
  return *epoch;
}

std::expected<void, LogError> SqliteLeaseLog::Stage(std::span<const LogRecord> records) {
  if (records.empty()) return {};
  Impl* impl = impl_.get();
  auto staged = impl->group.Stage([impl, batch = std::vector<LogRecord>(records.begin(), records.end())](
                                      storage::Database&) -> storage::Status {
    for (const LogRecord& record : batch) {
      if (auto ok = impl->Write(record); !ok) return ok;
    }
    return {};
  });
  if (!staged) return std::unexpected(FromStorage(staged.error()));
  return {};
}

std::expected<void, LogError> SqliteLeaseLog::Flush() {
  auto flushed = impl_->group.Flush();
  if (!flushed) {
    // A failed statement may be left mid-step: reset them all so the next batch starts clean.
    Impl::Statements& s = *impl_->st;
    for (storage::Statement* stmt :
         {&s.insert_event, &s.upsert_token, &s.ensure_resource, &s.put_lease, &s.delete_waiter, &s.add_waiter,
          &s.renew_lease, &s.end_lease, &s.set_hold}) {
      stmt->Reset();
    }
    return std::unexpected(FromStorage(flushed.error()));
  }
  return {};
}

std::expected<void, LogError> SqliteLeaseLog::Append(std::span<const LogRecord> records) {
  if (auto ok = Stage(records); !ok) return ok;
  return Flush();
}

std::expected<LeaseTable, LogError> SqliteLeaseLog::LoadState() const {
  const storage::Database& db = impl_->db;
  const auto corrupt = [&](std::string what) {
    return std::unexpected(LogError{fmt::format("{}: damaged epoch log: {}", db.path(), what)});
  };
  const auto name_of = [&](const storage::Statement& row) -> std::optional<ResourceName> {
    const auto tenant = row.TextView(0);
    const auto resource = row.TextView(1);
    if (tenant.empty() || resource.empty() || tenant.size() > kMaxNameBytes ||
        resource.size() > kMaxNameBytes) {
      return std::nullopt;
    }
    return ResourceName{std::string(tenant), std::string(resource)};
  };
  LeaseTable table;

  auto resources = db.Prepare("SELECT tenant, resource, last_token, hold_until_dtn_ms FROM resources");
  if (!resources) return std::unexpected(FromStorage(resources.error()));
  for (;;) {
    auto row = resources->Step();
    if (!row) return std::unexpected(FromStorage(row.error()));
    if (!*row) break;
    auto name = name_of(*resources);
    if (!name) return corrupt("a resources row has an empty or over-long tenant/resource name");
    ResourceState& state = table.resources[*name];
    state.last_token = static_cast<FencingToken>(resources->Int(2));
    state.hold_until = clock::DtnTime::FromMillis(resources->Int(3));
  }

  auto leases = db.Prepare(
      "SELECT tenant, resource, rover, request_id, token, term_ms, expires_dtn_ms, granted_epoch, policy "
      "FROM leases");
  if (!leases) return std::unexpected(FromStorage(leases.error()));
  for (;;) {
    auto row = leases->Step();
    if (!row) return std::unexpected(FromStorage(row.error()));
    if (!*row) break;
    auto name = name_of(*leases);
    if (!name) return corrupt("a leases row has an empty or over-long tenant/resource name");
    auto it = table.resources.find(*name);
    if (it == table.resources.end())
      return corrupt(fmt::format("lease of {} has no resources row", name->ToString()));
    LeaseState lease;
    lease.holder = static_cast<NodeNumber>(leases->Int(2));
    lease.request_id = static_cast<RequestId>(leases->Int(3));
    lease.token = static_cast<FencingToken>(leases->Int(4));
    lease.term = clock::Duration(leases->Int(5));
    lease.expires = clock::DtnTime::FromMillis(leases->Int(6));
    lease.granted_epoch = static_cast<Epoch>(leases->Int(7));
    const auto policy = leases->TextView(8);
    if (policy.size() > kMaxStoredText)
      return corrupt(fmt::format("lease of {}: over-long policy", name->ToString()));
    lease.policy = std::string(policy);
    if (lease.token == 0 || lease.token > it->second.last_token) {
      return corrupt(fmt::format("lease of {} has token {} but the last token is {}", name->ToString(),
                                 lease.token, it->second.last_token));
    }
    it->second.lease = std::move(lease);
  }

  auto waiters = db.Prepare(
      "SELECT tenant, resource, rover, request_id, term_ms, deadline_dtn_ms FROM waiters ORDER BY queue_seq");
  if (!waiters) return std::unexpected(FromStorage(waiters.error()));
  for (;;) {
    auto row = waiters->Step();
    if (!row) return std::unexpected(FromStorage(row.error()));
    if (!*row) break;
    auto name = name_of(*waiters);
    if (!name) return corrupt("a waiters row has an empty or over-long tenant/resource name");
    auto it = table.resources.find(*name);
    if (it == table.resources.end())
      return corrupt(fmt::format("waiter of {} has no resources row", name->ToString()));
    it->second.waiters.push_back(
        WaiterState{static_cast<NodeNumber>(waiters->Int(2)), static_cast<RequestId>(waiters->Int(3)),
                    clock::Duration(waiters->Int(4)), clock::DtnTime::FromMillis(waiters->Int(5))});
  }
  std::erase_if(table.resources, [](const auto& entry) { return entry.second.Empty(); });
  return table;
}

}  // namespace ics::coordinator
