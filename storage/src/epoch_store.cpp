#include "storage/epoch_store.h"

#include <fmt/format.h>

#include <limits>
#include <utility>

#include "sqlite_error.h"

namespace ics::storage {
namespace {

using internal::MakePlainError;

constexpr std::string_view kCreateTable =
    "CREATE TABLE IF NOT EXISTS epochs("
    "epoch INTEGER PRIMARY KEY, reason TEXT NOT NULL, started_dtn_ms INTEGER NOT NULL)";

Result<bool> TableExists(const Database& db) {
  auto found = db.QueryInt("SELECT count(*) FROM sqlite_schema WHERE type='table' AND name='epochs'");
  if (!found) {
    return std::unexpected(std::move(found.error()));
  }
  return found->value_or(0) > 0;
}

Result<std::uint64_t> MaxEpoch(const Database& db) {
  auto max = db.QueryInt("SELECT max(epoch) FROM epochs");
  if (!max) {
    return std::unexpected(std::move(max.error()));
  }
  const std::int64_t value = max->value_or(0);
  if (value < 0) {
    return std::unexpected(MakePlainError(Error::Kind::kCorrupt, db.path(),
                                          fmt::format("negative epoch {} in the epochs table", value), {},
                                          "SELECT max(epoch) FROM epochs"));
  }
  return static_cast<std::uint64_t>(value);
}

}  // namespace

Result<EpochStore> EpochStore::Open(Database& db) {
  if (db.read_only()) {
    // A reader only looks; Current() says 0 until a writer creates the table.
    if (auto exists = TableExists(db); !exists) {
      return std::unexpected(std::move(exists.error()));
    }
    return EpochStore(db);
  }
  if (auto ok = db.Exec(kCreateTable); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  return EpochStore(db);
}

Result<std::uint64_t> EpochStore::Current() const {
  auto exists = TableExists(*db_);
  if (!exists) {
    return std::unexpected(std::move(exists.error()));
  }
  if (!*exists) {
    return std::uint64_t{0};
  }
  return MaxEpoch(*db_);
}

Result<std::uint64_t> EpochStore::IncrementAndSync(std::string_view reason, std::int64_t at_dtn_ms) {
  Database& db = *db_;
  if (db.in_transaction()) {
    return std::unexpected(
        MakePlainError(Error::Kind::kMisuse, db.path(),
                       "epoch increment inside an open transaction: its durability would not be ours"));
  }
  // The promise is durability before return, whatever the connection's own setting: raise it to
  // FULL for this commit (synchronous cannot change inside a transaction) and restore it after.
  auto level = db.QueryInt("PRAGMA synchronous");
  if (!level) {
    return std::unexpected(std::move(level.error()));
  }
  constexpr std::int64_t kFull = 2;
  const std::int64_t previous = level->value_or(kFull);
  if (previous < kFull) {
    if (auto ok = db.Exec("PRAGMA synchronous=FULL"); !ok) {
      return std::unexpected(std::move(ok.error()));
    }
  }

  std::uint64_t next = 0;
  auto ok = WithTransaction(db, [&]() -> Status {
    auto max = MaxEpoch(db);
    if (!max) {
      return std::unexpected(std::move(max.error()));
    }
    if (*max >= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::unexpected(MakePlainError(Error::Kind::kOther, db.path(), "epoch counter exhausted"));
    }
    next = *max + 1;
    auto insert = db.Prepare("INSERT INTO epochs(epoch, reason, started_dtn_ms) VALUES(?1, ?2, ?3)");
    if (!insert) {
      return std::unexpected(std::move(insert.error()));
    }
    insert->Bind(1, next).Bind(2, reason).Bind(3, at_dtn_ms);
    return insert->Run();
  });

  if (previous < kFull) {
    auto restore = db.Exec(fmt::format("PRAGMA synchronous={}", previous));
    if (ok && !restore) {
      return std::unexpected(std::move(restore.error()));
    }
  }
  if (!ok) {
    return std::unexpected(std::move(ok.error()));
  }
  return next;
}

}  // namespace ics::storage
