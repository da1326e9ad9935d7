// The epoch log in SQLite, through ics::storage only (no <sqlite3.h> here: the layering check).
//
// Why the table-per-state design: the events table grows without end (millions of rows over a
// mission), so restart must not replay it. Each Append writes the events AND applies their state
// changes to the resource_state/waiters tables in the same transaction, with the same rules as
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

// Version 2, for the write cost of a durable decision (coordinator/bench/README.md):
//  - The events indexes on resource, rover and request id were keyed at random places of a
//    growing b-tree, so each commit rewrote about one index page per record. Their replacements
//    lead with the event's block (seq >> 12: 4,096 events), so new entries land in the newest
//    block, a few pages per commit as for an append. A lookup seeks once per block (2,442 seeks
//    for ten million events): see kEventBlockShift and the epochlog reader.
//  - `resources` and `leases` become one row per resource (`resource_state`), so a grant and a
//    release each write one row instead of two. `resources` and `leases` remain, as views of it,
//    with their version-1 columns, for readers.
constexpr std::string_view kSchemaV2 = R"sql(
DROP INDEX events_by_resource;
DROP INDEX events_by_rover;
DROP INDEX events_by_request;
CREATE INDEX events_by_resource_in_block ON events(seq >> 12, tenant, resource);
CREATE INDEX events_by_rover_in_block ON events(seq >> 12, rover);
CREATE INDEX events_by_request_in_block ON events(seq >> 12, request_id);

CREATE TABLE resource_state (
  tenant            TEXT    NOT NULL,
  resource          TEXT    NOT NULL,
  last_token        INTEGER NOT NULL,
  hold_until_dtn_ms INTEGER NOT NULL,
  rover             INTEGER,
  request_id        INTEGER,
  token             INTEGER,
  term_ms           INTEGER,
  expires_dtn_ms    INTEGER,
  granted_epoch     INTEGER,
  granted_seq       INTEGER,
  policy            TEXT,
  PRIMARY KEY (tenant, resource)
) WITHOUT ROWID;
INSERT INTO resource_state
  SELECT r.tenant, r.resource, r.last_token, r.hold_until_dtn_ms, l.rover, l.request_id, l.token, l.term_ms,
         l.expires_dtn_ms, l.granted_epoch, l.granted_seq, l.policy
    FROM resources AS r LEFT JOIN leases AS l ON l.tenant = r.tenant AND l.resource = r.resource;
DROP TABLE leases;
DROP TABLE resources;
CREATE VIEW resources AS
  SELECT tenant, resource, last_token, hold_until_dtn_ms FROM resource_state;
CREATE VIEW leases AS
  SELECT tenant, resource, rover, request_id, token, term_ms, expires_dtn_ms, granted_epoch, granted_seq, policy
    FROM resource_state WHERE token IS NOT NULL;
)sql";

constexpr std::array<storage::Migration, 2> kMigrations = {storage::Migration{1, kSchemaV1},
                                                           storage::Migration{2, kSchemaV2}};
constexpr storage::SchemaSpec kSpec{"coordinator epoch log", kEpochLogApplicationId, kMigrations};

constexpr int kWalCheckpointPages = 8192;

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
  // Records staged since the last Flush, written by one GroupCommit write at the Flush: one
  // closure per batch instead of one (and a copy of the records) per Stage.
  std::vector<LogRecord> pending;
  // Rows in `waiters` (read at open, kept by Write): while none is queued, a grant or deny has no
  // waiter to remove and skips the DELETE, one b-tree search per grant.
  std::int64_t waiter_rows = 0;

  // Prepared once, reused for every record.
  struct Statements {
    storage::Statement insert_event, grant, ensure_resource, delete_waiter, add_waiter, renew_lease,
        end_lease;
  };
  std::optional<Statements> st;

  storage::Status Prepare();
  storage::Status CountWaiters();
  storage::Status Write(const LogRecord& record);
  storage::Status DeleteWaiter(std::string_view tenant, std::string_view resource, const LogRecord& r);
};

storage::Status SqliteLeaseLog::Impl::CountWaiters() {
  auto count = db.QueryInt("SELECT count(*) FROM waiters");
  if (!count) return std::unexpected(std::move(count.error()));
  waiter_rows = count->value_or(0);
  return {};
}

storage::Status SqliteLeaseLog::Impl::DeleteWaiter(std::string_view tenant, std::string_view resource,
                                                   const LogRecord& r) {
  if (waiter_rows <= 0) return {};
  auto ok = st->delete_waiter.Bind(1, tenant)
                .Bind(2, resource)
                .Bind(3, Signed(*r.rover))
                .Bind(4, Signed(*r.request_id))
                .Run();
  if (ok) waiter_rows -= db.Changes();
  return ok;
}

storage::Status SqliteLeaseLog::Impl::Prepare() {
  const std::array<std::pair<storage::Statement Statements::*, std::string_view>, 7> sql = {{
      {&Statements::insert_event,
       "INSERT INTO events(at_dtn_ms, epoch, kind, tenant, resource, rover, request_id, token, "
       "lease_expires_dtn_ms, term_ms, deadline_dtn_ms, regrant_at_dtn_ms, reason, policy) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"},
      {&Statements::grant,
       "INSERT INTO resource_state(tenant, resource, last_token, hold_until_dtn_ms, rover, request_id, "
       "token, term_ms, expires_dtn_ms, granted_epoch, granted_seq, policy) "
       "VALUES(?1, ?2, ?5, 0, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
       "ON CONFLICT(tenant, resource) DO UPDATE SET last_token = max(last_token, excluded.last_token), "
       "rover = excluded.rover, request_id = excluded.request_id, token = excluded.token, "
       "term_ms = excluded.term_ms, expires_dtn_ms = excluded.expires_dtn_ms, "
       "granted_epoch = excluded.granted_epoch, granted_seq = excluded.granted_seq, "
       "policy = excluded.policy"},
      {&Statements::ensure_resource,
       "INSERT INTO resource_state(tenant, resource, last_token, hold_until_dtn_ms) VALUES(?1, ?2, 0, 0) "
       "ON CONFLICT(tenant, resource) DO NOTHING"},
      {&Statements::delete_waiter,
       "DELETE FROM waiters WHERE tenant = ?1 AND resource = ?2 AND rover = ?3 AND request_id = ?4"},
      {&Statements::add_waiter,
       "INSERT INTO waiters(queue_seq, tenant, resource, rover, request_id, term_ms, deadline_dtn_ms) "
       "VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)"},
      {&Statements::renew_lease,
       "UPDATE resource_state SET expires_dtn_ms = ?4, term_ms = ?5, policy = ?6 "
       "WHERE tenant = ?1 AND resource = ?2 AND token = ?3"},
      // Only the current lease (its token) ends; the hold-off moves with it (as ApplyToTable).
      {&Statements::end_lease,
       "UPDATE resource_state SET hold_until_dtn_ms = ?4, rover = NULL, request_id = NULL, token = NULL, "
       "term_ms = NULL, expires_dtn_ms = NULL, granted_epoch = NULL, granted_seq = NULL, policy = NULL "
       "WHERE tenant = ?1 AND resource = ?2 AND token = ?3"},
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

// Texts are bound without copies (BindUnowned): `r` lives in `pending` until the Flush is over,
// and every statement has all its texts bound again before it next runs.
storage::Status SqliteLeaseLog::Impl::Write(const LogRecord& r) {
  Statements& s = *st;
  const bool has_resource = !r.resource.tenant.empty();
  const auto text_or_null = [](storage::Statement& stmt, int index, const std::string& text, bool present) {
    if (present) {
      stmt.BindUnowned(index, std::string_view(text));
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
  ev.Bind(1, r.at.millis()).Bind(2, Signed(r.epoch)).BindUnowned(3, EventKindName(r.kind));
  text_or_null(ev, 4, r.resource.tenant, has_resource);
  text_or_null(ev, 5, r.resource.resource, has_resource);
  ev.Bind(6, u64(r.rover)).Bind(7, u64(r.request_id)).Bind(8, u64(r.token)).Bind(9, ms(r.lease_expires));
  ev.Bind(10, term_ms).Bind(11, ms(r.deadline)).Bind(12, ms(r.regrant_at));
  ev.BindUnowned(13, r.reason).BindUnowned(14, r.policy);
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
      s.grant.BindUnowned(1, tenant)
          .BindUnowned(2, resource)
          .Bind(3, Signed(*r.rover))
          .Bind(4, Signed(*r.request_id));
      s.grant.Bind(5, Signed(*r.token)).Bind(6, r.term->count()).Bind(7, r.lease_expires->millis());
      s.grant.Bind(8, Signed(r.epoch)).Bind(9, seq).BindUnowned(10, r.policy);
      if (auto ok = s.grant.Run(); !ok) return ok;
      return DeleteWaiter(tenant, resource, r);
    }
    case EventKind::kQueued: {
      if (!r.rover || !r.request_id || !r.term || !r.deadline) return {};
      if (auto ok = s.ensure_resource.Bind(1, tenant).Bind(2, resource).Run(); !ok) return ok;
      s.add_waiter.Bind(1, seq).Bind(2, tenant).Bind(3, resource).Bind(4, Signed(*r.rover));
      s.add_waiter.Bind(5, Signed(*r.request_id)).Bind(6, r.term->count()).Bind(7, r.deadline->millis());
      auto ok = s.add_waiter.Run();
      if (ok) ++waiter_rows;
      return ok;
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
      return s.end_lease.BindUnowned(1, tenant)
          .BindUnowned(2, resource)
          .Bind(3, Signed(*r.token))
          .Bind(4, r.regrant_at->millis())
          .Run();
    }
    case EventKind::kDeny: {
      if (!r.rover || !r.request_id || !has_resource) return {};
      return DeleteWaiter(tenant, resource, r);
    }
  }
  return {};
}

SqliteLeaseLog::SqliteLeaseLog(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
SqliteLeaseLog::~SqliteLeaseLog() = default;

std::expected<std::unique_ptr<SqliteLeaseLog>, LogError> SqliteLeaseLog::Open(
    const std::string& path, storage::Durability durability) {
  storage::OpenOptions options;
  options.durability = durability;
  auto db = storage::Database::Open(path, options);
  if (!db) return std::unexpected(FromStorage(db.error()));
  if (auto ok = storage::Migrate(*db, kSpec); !ok) return std::unexpected(FromStorage(ok.error()));
  auto impl = std::make_unique<Impl>(std::move(*db));
  auto epochs = storage::EpochStore::Open(impl->db);
  if (!epochs) return std::unexpected(FromStorage(epochs.error()));
  impl->epochs.emplace(std::move(*epochs));
  if (auto ok = impl->Prepare(); !ok) return std::unexpected(FromStorage(ok.error()));
  if (auto ok = impl->CountWaiters(); !ok) return std::unexpected(FromStorage(ok.error()));
  // Checkpoint every 8,192 WAL pages (32 MiB) rather than SQLite's 1,000: the hot pages (the
  // newest events, index blocks and resource rows) are copied to the file once per checkpoint,
  // so rarer checkpoints copy each of them fewer times (measured: about a tenth of the write cost).
  if (auto ok = impl->db.Exec(fmt::format("PRAGMA wal_autocheckpoint={}", kWalCheckpointPages)); !ok)
    return std::unexpected(FromStorage(ok.error()));
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
  impl_->pending.insert(impl_->pending.end(), records.begin(), records.end());
  return FlushIfFull();
}

std::expected<void, LogError> SqliteLeaseLog::Stage(std::vector<LogRecord>&& records) {
  if (impl_->pending.empty()) {
    impl_->pending = std::move(records);
  } else {
    impl_->pending.insert(impl_->pending.end(), std::make_move_iterator(records.begin()),
                          std::make_move_iterator(records.end()));
  }
  records.clear();
  return FlushIfFull();
}

std::expected<void, LogError> SqliteLeaseLog::FlushIfFull() {
  if (impl_->pending.size() < kMaxStagedRecords) return {};
  return Flush();
}

std::size_t SqliteLeaseLog::staged() const { return impl_->pending.size(); }

std::expected<void, LogError> SqliteLeaseLog::Flush() {
  Impl* impl = impl_.get();
  if (impl->pending.empty()) return {};
  auto staged = impl->group.Stage([impl](storage::Database&) -> storage::Status {
    for (const LogRecord& record : impl->pending) {
      if (auto ok = impl->Write(record); !ok) return ok;
    }
    return {};
  });
  std::expected<void, LogError> result;
  if (!staged) {
    result = std::unexpected(FromStorage(staged.error()));
  } else if (auto flushed = impl->group.Flush(); !flushed) {
    result = std::unexpected(FromStorage(flushed.error()));
  }
  // Committed or rolled back, the batch is over (as GroupCommit drops a failed batch).
  impl->pending.clear();
  if (!result) {
    // A failed statement may be left mid-step: reset them all so the next batch starts clean;
    // the rollback also undid the waiter rows counted in this batch.
    Impl::Statements& s = *impl->st;
    for (storage::Statement* stmt : {&s.insert_event, &s.grant, &s.ensure_resource, &s.delete_waiter,
                                     &s.add_waiter, &s.renew_lease, &s.end_lease}) {
      stmt->Reset();
    }
    if (auto ok = impl->CountWaiters(); !ok) impl->waiter_rows = 1;  // unknown: never skip a DELETE
  }
  return result;
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
