// The agent's SQLite file. One row per lease (keyed by its acquire request id) and two counters.
// Every Apply is one IMMEDIATE transaction on a synchronous=FULL connection (unless the opener
// chose StoreDurability::kNone): a batch that returned ok is on stable storage before the driver
// sends the messages that depend on it.
// Rows are read back as untrusted input: counts, names and enum values are checked.
#include <fmt/format.h>

#include <array>
#include <utility>

#include "rover_agent/agent_store.h"
#include "storage/database.h"
#include "storage/schema.h"
#include "store_durability.h"

namespace ics::rover_agent {
namespace {

using storage::Database;
using storage::Status;

constexpr std::array kMigrations{storage::Migration{1, R"sql(
CREATE TABLE agent_counter (
  name  TEXT PRIMARY KEY,        -- 'reserved_request_id' | 'epoch'
  value INTEGER NOT NULL CHECK (value >= 0)
);
CREATE TABLE agent_lease (
  acquire_request_id   INTEGER PRIMARY KEY,
  tenant               TEXT NOT NULL,
  resource             TEXT NOT NULL,
  state                INTEGER NOT NULL,   -- 1 requesting, 2 held, 3 releasing
  term_ms              INTEGER NOT NULL,
  hold_ms              INTEGER NOT NULL,
  deadline_ms          INTEGER NOT NULL,   -- DTN ms, agent clock (as all times here)
  first_sent_ms        INTEGER NOT NULL,
  token                INTEGER NOT NULL,
  epoch                INTEGER NOT NULL,
  view_start_ms        INTEGER NOT NULL,
  view_end_ms          INTEGER NOT NULL,
  hold_until_ms        INTEGER NOT NULL,
  renew_request_id     INTEGER NOT NULL,
  renew_first_sent_ms  INTEGER NOT NULL,
  release_request_id   INTEGER NOT NULL,
  release_give_up_ms   INTEGER NOT NULL,
  count_from_ms        INTEGER NOT NULL
);
)sql"}};

constexpr storage::SchemaSpec kSpec{"rover agent store", 0x49435341 /* "ICSA" */, kMigrations};

constexpr std::string_view kUpsert =
    "INSERT OR REPLACE INTO agent_lease (acquire_request_id, tenant, resource, state, term_ms, hold_ms, "
    "deadline_ms, first_sent_ms, token, epoch, view_start_ms, view_end_ms, hold_until_ms, renew_request_id, "
    "renew_first_sent_ms, release_request_id, release_give_up_ms, count_from_ms) "
    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";
constexpr std::string_view kSelect =
    "SELECT acquire_request_id, tenant, resource, state, term_ms, hold_ms, deadline_ms, first_sent_ms, "
    "token, "
    "epoch, view_start_ms, view_end_ms, hold_until_ms, renew_request_id, renew_first_sent_ms, "
    "release_request_id, "
    "release_give_up_ms, count_from_ms FROM agent_lease ORDER BY acquire_request_id";

class SqliteAgentStore final : public AgentStore {
 public:
  explicit SqliteAgentStore(Database db) : db_(std::move(db)) {}

  std::expected<AgentSnapshot, std::string> Load() override {
    AgentSnapshot snapshot;
    auto rows = db_.QueryInt("SELECT count(*) FROM agent_lease");
    if (!rows) return std::unexpected(rows.error().message);
    if (rows->value_or(0) > static_cast<std::int64_t>(kMaxStoredLeases)) {
      return std::unexpected(fmt::format("{}: {} leases stored, more than the limit {}", db_.path(),
                                         rows->value_or(0), kMaxStoredLeases));
    }
    auto reserved = Counter("reserved_request_id");
    if (!reserved) return std::unexpected(reserved.error());
    auto epoch = Counter("epoch");
    if (!epoch) return std::unexpected(epoch.error());
    snapshot.reserved_through = *reserved;
    snapshot.epoch = *epoch;

    auto stmt = db_.Prepare(kSelect);
    if (!stmt) return std::unexpected(stmt.error().message);
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error().message);
      if (!*row) break;
      if (snapshot.leases.size() >= kMaxStoredLeases) {
        return std::unexpected(fmt::format("{}: more than {} leases stored", db_.path(), kMaxStoredLeases));
      }
      LeaseRecord r;
      const std::int64_t id = stmt->Int(0);
      const std::int64_t state = stmt->Int(3);
      if (id <= 0 || stmt->IsNull(1) || stmt->IsNull(2) || stmt->TextView(1).empty() ||
          stmt->TextView(2).empty() || stmt->TextView(1).size() > coordinator::kMaxNameBytes ||
          stmt->TextView(2).size() > coordinator::kMaxNameBytes || state < 1 || state > 3) {
        return std::unexpected(
            fmt::format("{}: agent_lease row {} is invalid (empty or oversized name, or state {})",
                        db_.path(), id, state));
      }
      for (int column : {8, 9, 13, 15}) {
        if (stmt->Int(column) < 0) {
          return std::unexpected(
              fmt::format("{}: agent_lease row {} has a negative id, token or epoch in column {}", db_.path(),
                          id, column));
        }
      }
      r.acquire_request_id = static_cast<RequestId>(id);
      r.resource = ResourceName{stmt->Text(1), stmt->Text(2)};
      r.state = static_cast<LeaseState>(state);
      r.term = clock::Duration(stmt->Int(4));
      r.hold = clock::Duration(stmt->Int(5));
      r.deadline = clock::DtnTime::FromMillis(stmt->Int(6));
      r.first_sent_at = clock::DtnTime::FromMillis(stmt->Int(7));
      r.token = static_cast<FencingToken>(stmt->Int(8));
      r.epoch = static_cast<Epoch>(stmt->Int(9));
      r.view_start = clock::DtnTime::FromMillis(stmt->Int(10));
      r.view_end = clock::DtnTime::FromMillis(stmt->Int(11));
      r.hold_until = clock::DtnTime::FromMillis(stmt->Int(12));
      r.renew_request_id = static_cast<RequestId>(stmt->Int(13));
      r.renew_first_sent_at = clock::DtnTime::FromMillis(stmt->Int(14));
      r.release_request_id = static_cast<RequestId>(stmt->Int(15));
      r.release_give_up_at = clock::DtnTime::FromMillis(stmt->Int(16));
      r.count_from = clock::DtnTime::FromMillis(stmt->Int(17));
      snapshot.leases.push_back(std::move(r));
    }
    return snapshot;
  }

  std::expected<void, std::string> Apply(std::span<const AgentRecord> records) override {
    if (records.empty()) return {};
    Status status = storage::WithTransaction(db_, [&]() -> Status {
      for (const AgentRecord& record : records) {
        if (Status s = ApplyOne(record); !s) return s;
      }
      return {};
    });
    if (!status) return std::unexpected(status.error().message);
    return {};
  }

 private:
  std::expected<std::uint64_t, std::string> Counter(std::string_view name) {
    auto stmt = db_.Prepare("SELECT value FROM agent_counter WHERE name = ?1");
    if (!stmt) return std::unexpected(stmt.error().message);
    stmt->Bind(1, name);
    auto row = stmt->Step();
    if (!row) return std::unexpected(row.error().message);
    if (!*row) return 0;
    const std::int64_t value = stmt->Int(0);
    if (value < 0)
      return std::unexpected(fmt::format("{}: counter {} is negative ({})", db_.path(), name, value));
    return static_cast<std::uint64_t>(value);
  }

  Status RaiseCounter(std::string_view name, std::uint64_t value) {
    auto stmt = db_.Prepare(
        "INSERT INTO agent_counter (name, value) VALUES (?1, ?2) "
        "ON CONFLICT (name) DO UPDATE SET value = max(value, excluded.value)");
    if (!stmt) return std::unexpected(stmt.error());
    return stmt->Bind(1, name).Bind(2, value).Run();
  }

  Status ApplyOne(const AgentRecord& record) {
    if (const auto* put = std::get_if<PersistLease>(&record)) {
      const LeaseRecord& r = put->lease;
      auto stmt = db_.Prepare(kUpsert);
      if (!stmt) return std::unexpected(stmt.error());
      stmt->Bind(1, r.acquire_request_id)
          .Bind(2, std::string_view(r.resource.tenant))
          .Bind(3, std::string_view(r.resource.resource))
          .Bind(4, static_cast<int>(r.state))
          .Bind(5, static_cast<std::int64_t>(r.term.count()))
          .Bind(6, static_cast<std::int64_t>(r.hold.count()))
          .Bind(7, r.deadline.millis())
          .Bind(8, r.first_sent_at.millis())
          .Bind(9, r.token)
          .Bind(10, r.epoch)
          .Bind(11, r.view_start.millis())
          .Bind(12, r.view_end.millis())
          .Bind(13, r.hold_until.millis())
          .Bind(14, r.renew_request_id)
          .Bind(15, r.renew_first_sent_at.millis())
          .Bind(16, r.release_request_id)
          .Bind(17, r.release_give_up_at.millis())
          .Bind(18, r.count_from.millis());
      return stmt->Run();
    }
    if (const auto* forget = std::get_if<ForgetLease>(&record)) {
      auto stmt = db_.Prepare("DELETE FROM agent_lease WHERE acquire_request_id = ?1");
      if (!stmt) return std::unexpected(stmt.error());
      return stmt->Bind(1, forget->acquire_request_id).Run();
    }
    if (const auto* reserve = std::get_if<ReserveRequestIds>(&record)) {
      return RaiseCounter("reserved_request_id", reserve->through);
    }
    const auto& epoch = std::get<LearnEpoch>(record);
    return RaiseCounter("epoch", epoch.epoch);
  }

  Database db_;
};

}  // namespace

std::expected<std::unique_ptr<AgentStore>, std::string> OpenSqliteAgentStore(
    const std::string& path, SqliteStoreOptions store_options) {
  storage::OpenOptions options;
  options.durability = ToStorage(store_options.durability);
  auto db = Database::Open(path, options);
  if (!db) return std::unexpected(fmt::format("opening the rover agent store: {}", db.error().message));
  if (Status migrated = storage::Migrate(*db, kSpec); !migrated) {
    return std::unexpected(fmt::format("migrating the rover agent store: {}", migrated.error().message));
  }
  return std::make_unique<SqliteAgentStore>(std::move(*db));
}

}  // namespace ics::rover_agent
