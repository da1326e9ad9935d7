// The guard's SQLite file: one row per resource with the highest token seen. Apply is one
// IMMEDIATE transaction on a synchronous=FULL connection (unless opened with StoreDurability::kNone),
// so a token is on stable storage before the operation under it is accepted; the upsert keeps the
// maximum, so the value never goes down.
#include <fmt/format.h>

#include <array>
#include <utility>

#include "rover_agent/guard_store.h"
#include "storage/database.h"
#include "storage/schema.h"
#include "store_durability.h"

namespace ics::rover_agent {
namespace {

using storage::Database;
using storage::Status;

constexpr std::array kMigrations{storage::Migration{1, R"sql(
CREATE TABLE guard_highest (
  tenant   TEXT NOT NULL,
  resource TEXT NOT NULL,
  token    INTEGER NOT NULL CHECK (token >= 0),
  PRIMARY KEY (tenant, resource)
);
)sql"}};

constexpr storage::SchemaSpec kSpec{"resource guard store", 0x49435347 /* "ICSG" */, kMigrations};

class SqliteGuardStore final : public GuardStore {
 public:
  explicit SqliteGuardStore(Database db) : db_(std::move(db)) {}

  std::expected<std::map<coordinator::ResourceName, coordinator::FencingToken>, std::string> Load() override {
    std::map<coordinator::ResourceName, coordinator::FencingToken> highest;
    auto stmt = db_.Prepare("SELECT tenant, resource, token FROM guard_highest");
    if (!stmt) return std::unexpected(stmt.error().message);
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error().message);
      if (!*row) break;
      if (highest.size() >= kMaxGuardedResources) {
        return std::unexpected(
            fmt::format("{}: more than {} guarded resources stored", db_.path(), kMaxGuardedResources));
      }
      if (stmt->IsNull(0) || stmt->IsNull(1) || stmt->TextView(0).empty() || stmt->TextView(1).empty() ||
          stmt->TextView(0).size() > coordinator::kMaxNameBytes ||
          stmt->TextView(1).size() > coordinator::kMaxNameBytes || stmt->Int(2) < 0) {
        return std::unexpected(
            fmt::format("{}: invalid guard_highest row (name empty or oversized, or token < 0)", db_.path()));
      }
      highest[coordinator::ResourceName{stmt->Text(0), stmt->Text(1)}] =
          static_cast<coordinator::FencingToken>(stmt->Int(2));
    }
    return highest;
  }

  std::expected<void, std::string> Apply(std::span<const GuardRecord> records) override {
    if (records.empty()) return {};
    Status status = storage::WithTransaction(db_, [&]() -> Status {
      auto stmt = db_.Prepare(
          "INSERT INTO guard_highest (tenant, resource, token) VALUES (?1, ?2, ?3) "
          "ON CONFLICT (tenant, resource) DO UPDATE SET token = max(token, excluded.token)");
      if (!stmt) return std::unexpected(stmt.error());
      for (const GuardRecord& r : records) {
        stmt->Bind(1, std::string_view(r.resource.tenant))
            .Bind(2, std::string_view(r.resource.resource))
            .Bind(3, r.highest);
        if (Status s = stmt->Run(); !s) return s;
      }
      return {};
    });
    if (!status) return std::unexpected(status.error().message);
    return {};
  }

 private:
  Database db_;
};

}  // namespace

std::expected<std::unique_ptr<GuardStore>, std::string> OpenSqliteGuardStore(
    const std::string& path, SqliteStoreOptions store_options) {
  storage::OpenOptions options;
  options.durability = ToStorage(store_options.durability);
  auto db = Database::Open(path, options);
  if (!db) return std::unexpected(fmt::format("opening the guard store: {}", db.error().message));
  if (Status migrated = storage::Migrate(*db, kSpec); !migrated) {
    return std::unexpected(fmt::format("migrating the guard store: {}", migrated.error().message));
  }
  return std::make_unique<SqliteGuardStore>(std::move(*db));
}

}  // namespace ics::rover_agent
