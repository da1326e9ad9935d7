// The durable bundle store: one SQLite file (WAL, synchronous=FULL). Each staged write runs at
// once inside one open transaction (begun by the first write after a Commit), and Commit()
// commits it: one transaction and one fsync for any number of staged writes. A staged write that
// fails makes the next Commit() roll everything back and report that error. See dtn/bundle_store.h for the contract. The file is locked exclusively from the
// first transaction until the store is closed (one owner: its node daemon); another process
// opening it meanwhile gets a kBusy error.
//
// File layout (application_id kBundleStoreApplicationId, migrations in sqlite_bundle_store.cpp):
//   bundles(seq INTEGER PRIMARY KEY,            -- StoredBundleInfo::store_seq
//           source TEXT, created_ms, created_seq, fragment_offset, fragment_length,
//           destination TEXT, priority, disposition, received_ms, expires_ms,
//           delivered_once, bytes BLOB)         -- the encoded bundle, as received
//   seen(id TEXT PRIMARY KEY, expires_ms)       -- BundleId::ToString() of every accepted bundle
//   counters(name TEXT PRIMARY KEY, value)      -- e.g. the node's creation sequence
// Open() reads every row of bundles (not the bytes), seen and counters to rebuild the index, so
// opening costs O(stored + seen) time and memory; bundle bytes are read on demand (ReadBytes).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "dtn/bundle_store.h"
#include "storage/database.h"
#include "storage/schema.h"

namespace ics::dtn {

// "ICSB" in ASCII: PRAGMA application_id of bundle store files.
inline constexpr std::int32_t kBundleStoreApplicationId = 0x49435342;
const storage::SchemaSpec& BundleStoreSchema();

struct SqliteBundleStoreOptions {
  StoreLimits limits;
  // kFull in production: a committed bundle survives power loss. Tests may lower it.
  storage::Durability durability = storage::Durability::kFull;
};

class SqliteBundleStore final : public BundleStore {
 public:
  // Opens (creating if missing) the store at `path`, migrates it, and rebuilds the index.
  // Errors name the file: not a bundle store (kForeignSchema), newer (kNewerSchema), corrupt,
  // I/O. A row that fails to parse (a corrupt or foreign-written file) is kCorrupt, naming it.
  static storage::Result<std::unique_ptr<SqliteBundleStore>> Open(const std::string& path,
                                                                  const SqliteBundleStoreOptions& options = {});
  ~SqliteBundleStore() override;

  const std::string& path() const;
  std::uint64_t commits() const;  // transactions committed by Commit() so far

 protected:
  storage::Status StagePut(const StoredBundleInfo& info, std::span<const std::uint8_t> bytes) override;
  storage::Status StageRemove(const StoredBundleInfo& info) override;
  storage::Status StageDelivered(const StoredBundleInfo& info) override;
  storage::Status StageForgetSeen(const std::string& key) override;
  storage::Status StageCounter(std::string_view name, std::uint64_t value) override;
  storage::Result<std::vector<std::uint8_t>> LoadBytes(const StoredBundleInfo& info) const override;
  storage::Status DoCommit() override;

 private:
  struct Impl;
  explicit SqliteBundleStore(StoreLimits limits);
  storage::Status Load();
  std::unique_ptr<Impl> impl_;
};

}  // namespace ics::dtn
