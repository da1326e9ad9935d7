// Read-only access to a coordinator's epoch log (coordinator/sqlite_lease_log.h): opens the file
// (or <dir>/epochlog.db) with storage::OpenOptions{read_only = true}, checks it is an epoch log at
// a schema version this build knows, and holds ONE deferred read transaction for the reader's
// life, so every query of a command sees the same snapshot while the coordinator keeps writing
// (WAL: the writer is never blocked; the tool never writes, so the file stays byte-for-byte the
// same).
//
// Rows come out one at a time (EventCursor), viewed in place: a command over ten million events
// holds one row at a time. Everything read is untrusted: values are not assumed valid (the
// verifier checks them), texts are bounded by kMaxTextBytes when printed.
#pragma once

#include <cstdint>
#include <expected>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "coordinator/lease_log.h"
#include "coordinator/protocol.h"
#include "storage/database.h"

namespace ics::epochlog {

// Exit statuses of the tool.
inline constexpr int kExitOk = 0;
inline constexpr int kExitViolations = 1;  // verify found violations or damage
inline constexpr int kExitError = 2;       // usage, missing/foreign/newer/unreadable file

struct Error {
  enum class Kind {
    kUsage,        // bad arguments (a malformed time, resource name ...)
    kMissing,      // no such file or directory
    kNotEpochLog,  // a SQLite file of something else, or not SQLite at all
    kNewerSchema,  // an epoch log of a newer schema than this build reads
    kDamaged,      // truncated, corrupt, or missing tables/columns this build needs
    kNotFound,     // the request / resource asked about is not in the log
    kIo,           // anything else reading or writing
  };
  Kind kind = Kind::kIo;
  std::string message;  // one line: names the file and what is wrong
};

// Longest reason/policy text kept from a row (longer texts are cut with "..." when printed).
inline constexpr std::size_t kMaxTextBytes = 16 * 1024;

// One row of `events`, viewed in place (valid until the cursor moves). Nullable columns are
// nullopt when NULL. `kind` is nullopt for a kind text this build does not know.
struct EventRow {
  std::int64_t seq = 0;
  std::int64_t at_ms = 0;
  std::int64_t epoch = 0;
  std::string_view kind_text;
  std::optional<coordinator::EventKind> kind;
  bool has_resource = false;  // tenant and resource both non-NULL
  std::string_view tenant;
  std::string_view resource;
  std::optional<std::int64_t> rover;
  std::optional<std::int64_t> request_id;
  std::optional<std::int64_t> token;
  std::optional<std::int64_t> lease_expires_ms;
  std::optional<std::int64_t> term_ms;
  std::optional<std::int64_t> deadline_ms;
  std::optional<std::int64_t> regrant_at_ms;
  std::string_view reason;
  std::string_view policy;
};

// Which events a cursor yields; all set conditions must hold. Rows come in seq order (oldest
// first), or newest first with `newest_first`.
struct EventFilter {
  std::optional<coordinator::ResourceName> resource;
  std::optional<std::int64_t> rover;
  std::optional<std::int64_t> request_id;
  std::optional<std::int64_t> epoch;
  std::optional<std::int64_t> since_ms;  // at_dtn_ms >= since
  std::optional<std::int64_t> until_ms;  // at_dtn_ms <= until
  bool exclude_epoch_starts = false;
  bool newest_first = false;
  std::optional<std::int64_t> limit;
  // false: `reason` only for deny rows and `policy` always empty (a faster scan for the verifier).
  bool texts = true;
};

class LogReader;

class EventCursor {
 public:
  EventCursor(EventCursor&&) noexcept = default;
  EventCursor& operator=(EventCursor&&) noexcept = default;
  // The next row (nullptr at the end). A read error (e.g. a damaged page) is kDamaged.
  std::expected<const EventRow*, Error> Next();

 private:
  friend class LogReader;
  explicit EventCursor(storage::Statement statement, std::string path)
      : statement_(std::move(statement)), path_(std::move(path)) {}
  storage::Statement statement_;
  std::string path_;
  EventRow row_;
};

// Not thread-safe: one owner. Movable.
class LogReader {
 public:
  // `path`: an epoch log file, or a coordinator data directory holding epochlog.db.
  static std::expected<LogReader, Error> Open(const std::string& path);

  LogReader(LogReader&&) noexcept;
  LogReader& operator=(LogReader&&) noexcept;
  ~LogReader();

  const std::string& path() const { return path_; }
  int schema_version() const { return schema_version_; }
  storage::Database& database() { return *db_; }

  std::expected<EventCursor, Error> Events(const EventFilter& filter);
  // Any statement in the read transaction; errors are turned into Error (kDamaged for corrupt).
  std::expected<storage::Statement, Error> Prepare(std::string_view sql);

  // Error from a storage error, naming this file.
  Error FromStorage(const storage::Error& error) const;

 private:
  LogReader() = default;
  std::string path_;
  int schema_version_ = 0;
  std::unique_ptr<storage::Database> db_;
  bool in_transaction_ = false;
};

// Maps a storage error to the tool's error kinds, as one line.
Error FromStorageError(const storage::Error& error);
// Collapses a message to one line (newlines and tabs become spaces).
std::string OneLine(std::string_view text);

}  // namespace ics::epochlog
