// The persisted epoch: a counter that only rises, incremented and fsynced before a coordinator
// (or any node that needs one) answers anything after a start.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/database.h"

namespace ics::storage {

// Owns its table `epochs(epoch INTEGER PRIMARY KEY, reason TEXT NOT NULL, started_dtn_ms INTEGER
// NOT NULL)` in a database file that it shares with other tables: it never touches the file's
// user_version or application_id (the file's owner runs Migrate() on it first).
// Invariant: the value returned by IncrementAndSync() is greater than every value any earlier
// call on this file returned, across crashes (it is durable before it is returned).
class EpochStore {
 public:
  // Creates the epochs table in `db` if missing (CREATE TABLE IF NOT EXISTS); on a read-only db
  // only looks. REQUIRES: db outlives the store.
  static Result<EpochStore> Open(Database& db);
  // The current (last durable) epoch; 0 when none was ever started (or no table yet).
  Result<std::uint64_t> Current() const;
  // Atomically increments the epoch and makes it durable (synchronous=FULL commit, whatever the
  // connection's Durability) before returning: one IMMEDIATE transaction reads the highest epoch
  // and inserts the next. `reason` ("start", "restart", "restore" ...) and `at_dtn_ms` are
  // recorded with it. kMisuse when db is inside a transaction (the commit would not be ours).
  Result<std::uint64_t> IncrementAndSync(std::string_view reason, std::int64_t at_dtn_ms);

 private:
  explicit EpochStore(Database& db) : db_(&db) {}
  Database* db_;
};

}  // namespace ics::storage
