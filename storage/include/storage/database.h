// A small RAII layer over the SQLite C API. The only component that includes <sqlite3.h>.
//
// Failures are values: every fallible call returns std::expected<T, Error>, and the Error names
// the database file and the SQL (or the step) that failed. No exception leaves this component.
#pragma once

#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;
struct sqlite3_stmt;

namespace ics::storage {

struct Error {
  enum class Kind {
    kIo,             // open/read/write/fsync failed
    kBusy,           // locked by another connection past the busy timeout
    kCorrupt,        // not a database, or a damaged one
    kDamagedRecord,  // one stored record's bytes are missing or fail their check; the rest is sound
    kNewerSchema,    // written by a newer version of this software: never touched
    kForeignSchema,  // a database of something else (wrong application_id)
    kConstraint,     // a UNIQUE / CHECK / NOT NULL constraint
    kMisuse,         // a bug in the caller (wrong column type, bind out of range ...)
    kFull,           // disk or quota full
    kReadOnly,
    kOther,
  };
  Kind kind = Kind::kOther;
  std::string message;  // "<path>: <what failed> (<sqlite message>) in: <sql>"
  int sqlite_code = 0;
};

template <typename T>
using Result = std::expected<T, Error>;
using Status = std::expected<void, Error>;

enum class Durability {
  kFull,    // synchronous=FULL: a committed transaction survives power loss (WAL fsync per commit)
  kNormal,  // synchronous=NORMAL: survives a process crash, not necessarily power loss
  kOff,     // synchronous=OFF: tests and scratch data only
};

struct OpenOptions {
  bool read_only = false;
  bool create = true;  // create the file when missing (ignored when read_only)
  Durability durability = Durability::kFull;
  int busy_timeout_ms = 5000;
  bool wal = true;  // journal_mode=WAL (readers never block the writer)
};

class Database;

// A prepared statement. Move-only; finalized on destruction. Not thread-safe.
// Bind indexes are 1-based (as in SQLite); column indexes are 0-based.
// A statement stays usable (and its errors keep naming the file) even if its Database object is
// moved; the connection itself is closed only once its last statement is finalized.
// Column accessors on a column index out of range, or on a statement without a current row,
// abort (a bug in the caller, not a runtime condition).
class Statement {
 public:
  Statement() = default;
  Statement(Statement&& other) noexcept;
  Statement& operator=(Statement&& other) noexcept;
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  ~Statement();

  Statement& Bind(int index, std::int64_t value);
  Statement& Bind(int index, int value) { return Bind(index, static_cast<std::int64_t>(value)); }
  // SQLite integers are signed 64-bit: a value above INT64_MAX is a kMisuse error (at Step).
  Statement& Bind(int index, std::uint64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, std::string_view text);
  Statement& Bind(int index, const char* text) { return Bind(index, std::string_view(text)); }
  // Binds the text without copying it (Bind copies). REQUIRES: the text stays valid and unchanged
  // until the statement's next Step/Run has returned and the index is bound again (or the
  // statement is Reset) before any later Step: SQLite reads it in place.
  Statement& BindUnowned(int index, std::string_view text);
  Statement& Bind(int index, std::span<const std::uint8_t> blob);
  Statement& BindNull(int index);
  template <typename T>
  Statement& Bind(int index, const std::optional<T>& value) {
    return value ? Bind(index, *value) : BindNull(index);
  }

  // Runs to the next row: true when a row is available, false when done. A bind error recorded
  // by Bind() is reported here (the statement is then reset and its bindings cleared, without
  // running it). After an execution error the statement is reset, bindings kept.
  Result<bool> Step();
  // Runs a statement that returns no rows (or ignores them), then resets it for reuse (bindings
  // are kept, so a caller may re-bind only what changes).
  Status Run();
  // Resets for re-execution and clears bindings.
  void Reset();

  int ColumnCount() const;
  bool IsNull(int column) const;
  std::int64_t Int(int column) const;
  double Real(int column) const;
  std::string Text(int column) const;
  std::vector<std::uint8_t> Blob(int column) const;
  std::span<const std::uint8_t> BlobView(int column) const;  // valid until the next Step/Reset
  std::string_view TextView(int column) const;               // valid until the next Step/Reset

  std::string_view sql() const;

 private:
  friend class Database;
  Statement(sqlite3_stmt* stmt, std::string path);
  Error MakeError(int rc, std::string_view what) const;
  void RecordBindError(int rc, int index, std::string_view type);
  void CheckColumn(int column) const;
  sqlite3_stmt* stmt_ = nullptr;
  std::string path_;  // of the database file, for error messages
  bool has_row_ = false;
  std::optional<Error> bind_error_;
};

// One connection to one SQLite file. Move-only; closed on destruction. Not thread-safe: one
// owner per connection (open another Database for another thread).
class Database {
 public:
  // Opens (or, with options.create, creates) the database at `path`. A file that is not a SQLite
  // database, or one shorter than its header says (truncated), gives Kind::kCorrupt and is left
  // untouched: nothing is written before the file has been read and checked. ":memory:" opens a
  // private in-memory db.
  // Journal mode: a new (empty) database, or one already in WAL, is put in WAL mode here when
  // options.wal. An existing database in another journal mode is left as it is, because switching
  // writes the file and it may be a foreign one: Migrate() switches it once it has checked the
  // file's application_id. Per connection: busy timeout, foreign_keys=ON, synchronous per
  // options.durability.
  static Result<Database> Open(const std::string& path, const OpenOptions& options = {});

  Database(Database&& other) noexcept;
  Database& operator=(Database&& other) noexcept;
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;
  ~Database();

  // Runs one or more statements with no results.
  Status Exec(std::string_view sql);
  Result<Statement> Prepare(std::string_view sql) const;
  // Runs a query whose first column of its first row is an integer (nullopt: no row or NULL).
  Result<std::optional<std::int64_t>> QueryInt(std::string_view sql) const;

  std::int64_t LastInsertRowId() const;
  int Changes() const;  // rows changed by the last statement
  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }
  const OpenOptions& options() const { return options_; }
  bool in_transaction() const;

  // PRAGMA integrity_check (quick when `quick`): ok, or the first problems as an error.
  Status CheckIntegrity(bool quick = true) const;

  sqlite3* handle() const { return db_; }  // for storage/ internals and tests only

  // Builds an Error for a SQLite result code (used by Statement and Transaction).
  Error MakeError(int rc, std::string_view what, std::string_view sql = {}) const;

 private:
  Database(sqlite3* db, std::string path, const OpenOptions& options);
  void Close();
  sqlite3* db_ = nullptr;
  std::string path_;
  bool read_only_ = false;
  OpenOptions options_;
};

// BEGIN ... COMMIT with rollback on destruction unless committed (also when unwinding).
// Not nestable: Begin() on a database already in a transaction is a kMisuse error.
// A failed Commit() rolls the transaction back (it is over either way). REQUIRES: db outlives it.
class Transaction {
 public:
  enum class Mode { kDeferred, kImmediate };
  static Result<Transaction> Begin(Database& db, Mode mode = Mode::kImmediate);
  Transaction(Transaction&& other) noexcept;
  Transaction& operator=(Transaction&&) = delete;
  Transaction(const Transaction&) = delete;
  ~Transaction();
  Status Commit();
  Status Rollback();

 private:
  explicit Transaction(Database* db) : db_(db) {}
  Database* db_ = nullptr;
};

// Runs `body` inside an immediate transaction: commits when it returns ok, rolls back when it
// returns an error or throws (the exception is rethrown).
Status WithTransaction(Database& db, const std::function<Status()>& body);

}  // namespace ics::storage
