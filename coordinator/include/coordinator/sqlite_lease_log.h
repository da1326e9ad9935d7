// The epoch log: the coordinator's durable lease log in SQLite, and the ground operators' source
// of truth (the ics-epochlog tool reads it). One file, `epochlog.db`, in the coordinator's data
// directory, holding:
//   events     append-only: every epoch start and every lease event with its reason and the
//              timeout-policy explanation of the time (DELETE aborts, by trigger);
//   resource_state, waiters
//              the current lease table (one row per resource, its lease in the row; `resources`
//              and `leases` are views of it), updated in the same transaction as the events that
//              change it, so a restart reads the table instead of replaying the events;
//   epochs     storage::EpochStore's counter (epoch, reason, started_dtn_ms).
// PRAGMA application_id = kEpochLogApplicationId ('ICSE'); PRAGMA user_version = the schema
// version. The full schema, column by column, is in coordinator/SCHEMA.md.
//
// Durability: synchronous=FULL under WAL; Append returns only after its transaction (one fsync)
// has committed. Not thread-safe: one owner (readers use their own read-only connections).
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/lease_log.h"
#include "storage/database.h"
#include "storage/schema.h"

namespace ics::coordinator {

inline constexpr std::string_view kEpochLogFileName = "epochlog.db";
inline constexpr std::int32_t kEpochLogApplicationId = 0x49435345;  // "ICSE"
// From schema version 2 on, events are indexed by resource, rover and request id within blocks
// of 2^kEventBlockShift consecutive seqs: the index keys are (seq >> kEventBlockShift, field).
// A reader looking up one resource (rover, request id) seeks once per block.
inline constexpr int kEventBlockShift = 12;
inline constexpr int kEventLogBlocksFromVersion = 2;

// The schema (application id and migrations), for readers: storage::CheckSchema(db, EpochLogSchema()).
const storage::SchemaSpec& EpochLogSchema();

class SqliteLeaseLog final : public LeaseLog {
 public:
  // Opens or creates the epoch log at `path`, migrating it to this build's schema. Refuses (and
  // leaves untouched) a file that is not an epoch log or was written by a newer schema. The
  // coordinator always uses kFull (a record is fsynced before any message that depends on it);
  // only a simulation whose files are scratch (the replayer's --stores sqlite) may pass kOff.
  static std::expected<std::unique_ptr<SqliteLeaseLog>, LogError> Open(
      const std::string& path, storage::Durability durability = storage::Durability::kFull);
  // Open(data_dir + "/epochlog.db"). The directory must exist.
  static std::expected<std::unique_ptr<SqliteLeaseLog>, LogError> OpenInDirectory(
      const std::string& data_dir);

  SqliteLeaseLog(const SqliteLeaseLog&) = delete;
  SqliteLeaseLog& operator=(const SqliteLeaseLog&) = delete;
  ~SqliteLeaseLog() override;

  std::expected<Epoch, LogError> StartEpoch(std::string_view reason, clock::DtnTime now) override;
  std::expected<Epoch, LogError> CurrentEpoch() const override;
  // Stage + Flush: one transaction.
  std::expected<void, LogError> Append(std::span<const LogRecord> records) override;
  std::expected<LeaseTable, LogError> LoadState() const override;

  // Group commit for drivers that gather several core outputs per turn: Stage queues records
  // (no I/O unless kMaxStagedRecords are waiting: then it flushes them itself), Flush commits
  // everything staged in one transaction. On a failed Flush every staged record is dropped (none
  // was written). The rvalue overload takes the records without copying them (`records` is left
  // empty).
  static constexpr std::size_t kMaxStagedRecords = 16'384;
  std::expected<void, LogError> Stage(std::span<const LogRecord> records);
  std::expected<void, LogError> Stage(std::vector<LogRecord>&& records);
  std::expected<void, LogError> Flush();
  std::size_t staged() const;  // records waiting for the next Flush

  const std::string& path() const;
  storage::Database& database();  // for tests and tools in this component

 private:
  struct Impl;
  std::expected<void, LogError> FlushIfFull();
  explicit SqliteLeaseLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ics::coordinator
