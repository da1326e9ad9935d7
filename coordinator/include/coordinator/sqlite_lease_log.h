// The epoch log: the coordinator's durable lease log in SQLite, and the ground operators' source
// of truth (the ics-epochlog tool reads it). One file, `epochlog.db`, in the coordinator's data
// directory, holding:
//   events     append-only: every epoch start and every lease event with its reason and the
//              timeout-policy explanation of the time (UPDATE and DELETE abort, by trigger);
//   resources, leases, waiters
//              the current lease table, updated in the same transaction as the events that
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

#include "coordinator/lease_log.h"
#include "storage/database.h"
#include "storage/schema.h"

namespace ics::coordinator {

inline constexpr std::string_view kEpochLogFileName = "epochlog.db";
inline constexpr std::int32_t kEpochLogApplicationId = 0x49435345;  // "ICSE"

// The schema (application id and migrations), for readers: storage::CheckSchema(db, EpochLogSchema()).
const storage::SchemaSpec& EpochLogSchema();

class SqliteLeaseLog final : public LeaseLog {
 public:
  // Opens or creates the epoch log at `path`, migrating it to this build's schema. Refuses (and
  // leaves untouched) a file that is not an epoch log or was written by a newer schema.
  static std::expected<std::unique_ptr<SqliteLeaseLog>, LogError> Open(const std::string& path);
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
  // (no I/O unless the batch is full), Flush commits everything staged in one transaction.
  std::expected<void, LogError> Stage(std::span<const LogRecord> records);
  std::expected<void, LogError> Flush();

  const std::string& path() const;
  storage::Database& database();  // for tests and tools in this component

 private:
  struct Impl;
  explicit SqliteLeaseLog(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace ics::coordinator
