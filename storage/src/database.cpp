#include "storage/database.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <array>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>

#include "sqlite_error.h"

namespace ics::storage {
namespace {

using internal::MakePlainError;
using internal::MakeSqliteError;

[[noreturn]] void Die(std::string_view what) {
  std::fprintf(stderr, "ics::storage: broken invariant: %.*s\n", static_cast<int>(what.size()), what.data());
  std::abort();
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\n' || s.front() == '\t' || s.front() == '\r')) {
    s.remove_prefix(1);
  }
  while (!s.empty() && (s.back() == ' ' || s.back() == '\n' || s.back() == '\t' || s.back() == '\r')) {
    s.remove_suffix(1);
  }
  return s;
}

bool IsFileBacked(const std::string& path) { return !path.empty() && path != ":memory:"; }

std::uint32_t BigEndian32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) |
         std::uint32_t{p[3]};
}

std::uintmax_t SizeOr0(const std::string& path) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  return ec ? 0 : size;
}

// SQLite itself trusts the file size over the page count in the header, so a truncated file
// opens "fine" and fails (or silently misses rows) later. We compare the two ourselves.
// The header count is only meaningful when the change counter (offset 24) equals the
// version-valid-for number (offset 92), as the file format document says. Under WAL, or with a
// rollback journal present, the main file may legitimately lag its header (pages still in the
// log), so the check is skipped then.
Status CheckNotTruncated(const std::string& path) {
  if (SizeOr0(path + "-wal") > 0 || SizeOr0(path + "-journal") > 0) {
    return {};
  }
  const std::uintmax_t size = SizeOr0(path);
  if (size == 0) {
    return {};  // a new, empty database
  }
  std::array<unsigned char, 100> header{};
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(header.data()), header.size());
  constexpr std::string_view kMagic("SQLite format 3\0", 16);
  if (static_cast<std::size_t>(in.gcount()) < kMagic.size() ||
      std::string_view(reinterpret_cast<const char*>(header.data()), kMagic.size()) != kMagic) {
    return {};  // not a SQLite file at all: SQLite's own first read says so
  }
  if (static_cast<std::size_t>(in.gcount()) < header.size()) {
    return std::unexpected(
        MakePlainError(Error::Kind::kCorrupt, path,
                       fmt::format("truncated database: {} bytes, shorter than the 100-byte header", size)));
  }
  std::uint32_t page_size = (std::uint32_t{header[16]} << 8) | std::uint32_t{header[17]};
  if (page_size == 1) {
    page_size = 65536;
  }
  const std::uint32_t page_count = BigEndian32(&header[28]);
  const bool count_valid = page_count != 0 && BigEndian32(&header[24]) == BigEndian32(&header[92]);
  const std::uintmax_t expected_size = std::uintmax_t{page_count} * page_size;
  if (count_valid && expected_size > size) {
    return std::unexpected(MakePlainError(
        Error::Kind::kCorrupt, path,
        fmt::format("truncated database: its header says {} pages of {} bytes ({} bytes) but the "
                    "file has {} bytes",
                    page_count, page_size, expected_size, size)));
  }
  return {};
}

// Runs a one-row, one-text-column query (PRAGMA journal_mode).
Result<std::string> QueryText(const Database& db, std::string_view sql) {
  auto stmt = db.Prepare(sql);
  if (!stmt) {
    return std::unexpected(stmt.error());
  }
  auto row = stmt->Step();
  if (!row) {
    return std::unexpected(row.error());
  }
  return *row ? stmt->Text(0) : std::string();
}

// Runs a one-row integer query straight on the handle, reporting failures as `what` (Open's
// first reads, where "statement failed" would not tell the user what was wrong with the file).
Status ProbeRead(sqlite3* db, const std::string& path, std::string_view what, std::string_view sql) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt, nullptr);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
      rc = SQLITE_OK;
    }
  }
  Error error = rc != SQLITE_OK ? MakeSqliteError(db, rc, path, what, sql) : Error{};
  sqlite3_finalize(stmt);
  if (rc != SQLITE_OK) {
    return std::unexpected(std::move(error));
  }
  return {};
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Statement

Statement::Statement(sqlite3_stmt* stmt, std::string path) : stmt_(stmt), path_(std::move(path)) {}

Statement::Statement(Statement&& other) noexcept
    : stmt_(std::exchange(other.stmt_, nullptr)),
      path_(std::move(other.path_)),
      has_row_(std::exchange(other.has_row_, false)),
      bind_error_(std::move(other.bind_error_)) {
  other.bind_error_.reset();
}

Statement& Statement::operator=(Statement&& other) noexcept {
  if (this != &other) {
    sqlite3_finalize(stmt_);
    stmt_ = std::exchange(other.stmt_, nullptr);
    path_ = std::move(other.path_);
    has_row_ = std::exchange(other.has_row_, false);
    bind_error_ = std::move(other.bind_error_);
    other.bind_error_.reset();
  }
  return *this;
}

Statement::~Statement() { sqlite3_finalize(stmt_); }

Error Statement::MakeError(int rc, std::string_view what) const {
  return MakeSqliteError(stmt_ ? sqlite3_db_handle(stmt_) : nullptr, rc, path_, what, sql());
}

void Statement::RecordBindError(int rc, int index, std::string_view type) {
  if (!bind_error_) {
    bind_error_ = MakeError(rc, fmt::format("cannot bind {} to parameter {}", type, index));
  }
}

Statement& Statement::Bind(int index, std::int64_t value) {
  if (!stmt_) {
    RecordBindError(SQLITE_MISUSE, index, "an integer");
  } else if (int rc = sqlite3_bind_int64(stmt_, index, value); rc != SQLITE_OK) {
    RecordBindError(rc, index, "an integer");
  }
  return *this;
}

Statement& Statement::Bind(int index, std::uint64_t value) {
  if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    if (!bind_error_) {
      bind_error_ = MakePlainError(
          Error::Kind::kMisuse, path_,
          fmt::format("cannot bind {} to parameter {}: above the largest SQLite integer", value, index), {},
          sql());
      bind_error_->sqlite_code = SQLITE_RANGE;
    }
    return *this;
  }
  return Bind(index, static_cast<std::int64_t>(value));
}

Statement& Statement::Bind(int index, double value) {
  if (!stmt_) {
    RecordBindError(SQLITE_MISUSE, index, "a real");
  } else if (int rc = sqlite3_bind_double(stmt_, index, value); rc != SQLITE_OK) {
    RecordBindError(rc, index, "a real");
  }
  return *this;
}

Statement& Statement::Bind(int index, std::string_view text) {
  // A null data pointer would bind NULL, not the empty text the caller meant.
  const char* data = text.data() != nullptr ? text.data() : "";
  if (!stmt_) {
    RecordBindError(SQLITE_MISUSE, index, "a text");
  } else if (int rc = sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
             rc != SQLITE_OK) {
    RecordBindError(rc, index, "a text");
  }
  return *this;
}

Statement& Statement::BindUnowned(int index, std::string_view text) {
  const char* data = text.data() != nullptr ? text.data() : "";
  if (!stmt_) {
    RecordBindError(SQLITE_MISUSE, index, "a text");
  } else if (int rc = sqlite3_bind_text64(stmt_, index, data, text.size(), SQLITE_STATIC, SQLITE_UTF8);
             rc != SQLITE_OK) {
    RecordBindError(rc, index, "a text");
  }
  return *this;
}

Statement& Statement::Bind(int index, std::span<const std::uint8_t> blob) {
  if (!stmt_) {
    RecordBindError(SQLITE_MISUSE, index, "a blob");
    return *this;
  }
  // Likewise an empty span may have a null pointer: bind a zero-length blob explicitly.
  int rc = blob.empty() ? sqlite3_bind_zeroblob(stmt_, index, 0)
                        : sqlite3_bind_blob64(stmt_, index, blob.data(), blob.size(), SQLITE_TRANSIENT);
  if (rc != SQLITE_OK) {
    RecordBindError(rc, index, "a blob");
  }
  return *this;
}

Statement& Statement::BindNull(int index) {
  if (!stmt_) {
    RecordBindError(SQLITE_MISUSE, index, "NULL");
  } else if (int rc = sqlite3_bind_null(stmt_, index); rc != SQLITE_OK) {
    RecordBindError(rc, index, "NULL");
  }
  return *this;
}

Result<bool> Statement::Step() {
  if (!stmt_) {
    return std::unexpected(
        MakePlainError(Error::Kind::kMisuse, path_, "step on an empty (moved-from) statement"));
  }
  if (bind_error_) {
    Error error = std::move(*bind_error_);
    Reset();
    return std::unexpected(std::move(error));
  }
  const int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) {
    has_row_ = true;
    return true;
  }
  has_row_ = false;
  if (rc == SQLITE_DONE) {
    return false;
  }
  Error error = MakeError(rc, "statement failed");
  sqlite3_reset(stmt_);
  return std::unexpected(std::move(error));
}

Status Statement::Run() {
  for (;;) {
    auto row = Step();
    if (!row) {
      return std::unexpected(std::move(row.error()));
    }
    if (!*row) {
      break;
    }
  }
  sqlite3_reset(stmt_);
  return {};
}

void Statement::Reset() {
  if (stmt_) {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  bind_error_.reset();
  has_row_ = false;
}

int Statement::ColumnCount() const { return stmt_ ? sqlite3_column_count(stmt_) : 0; }

void Statement::CheckColumn(int column) const {
  if (!has_row_) {
    Die(fmt::format("{}: column {} read without a current row in: {}", path_, column, sql()));
  }
  if (column < 0 || column >= sqlite3_column_count(stmt_)) {
    Die(fmt::format("{}: column {} out of range (0..{}) in: {}", path_, column,
                    sqlite3_column_count(stmt_) - 1, sql()));
  }
}

bool Statement::IsNull(int column) const {
  CheckColumn(column);
  return sqlite3_column_type(stmt_, column) == SQLITE_NULL;
}

std::int64_t Statement::Int(int column) const {
  CheckColumn(column);
  return sqlite3_column_int64(stmt_, column);
}

double Statement::Real(int column) const {
  CheckColumn(column);
  return sqlite3_column_double(stmt_, column);
}

std::string_view Statement::TextView(int column) const {
  CheckColumn(column);
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return text != nullptr ? std::string_view(text, static_cast<std::size_t>(size)) : std::string_view();
}

std::string Statement::Text(int column) const { return std::string(TextView(column)); }

std::span<const std::uint8_t> Statement::BlobView(int column) const {
  CheckColumn(column);
  const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return data != nullptr ? std::span<const std::uint8_t>(data, static_cast<std::size_t>(size))
                         : std::span<const std::uint8_t>();
}

std::vector<std::uint8_t> Statement::Blob(int column) const {
  auto view = BlobView(column);
  return std::vector<std::uint8_t>(view.begin(), view.end());
}

std::string_view Statement::sql() const {
  const char* text = stmt_ ? sqlite3_sql(stmt_) : nullptr;
  return text != nullptr ? std::string_view(text) : std::string_view();
}

// ---------------------------------------------------------------------------------------------
// Database

Database::Database(sqlite3* db, std::string path, const OpenOptions& options)
    : db_(db), path_(std::move(path)), read_only_(options.read_only), options_(options) {}

Database::Database(Database&& other) noexcept
    : db_(std::exchange(other.db_, nullptr)),
      path_(std::move(other.path_)),
      read_only_(other.read_only_),
      options_(other.options_) {}

Database& Database::operator=(Database&& other) noexcept {
  if (this != &other) {
    Close();
    db_ = std::exchange(other.db_, nullptr);
    path_ = std::move(other.path_);
    read_only_ = other.read_only_;
    options_ = other.options_;
  }
  return *this;
}

Database::~Database() { Close(); }

void Database::Close() {
  // close_v2: if statements are still alive the connection closes when the last is finalized.
  sqlite3_close_v2(db_);
  db_ = nullptr;
}

Error Database::MakeError(int rc, std::string_view what, std::string_view sql) const {
  return MakeSqliteError(db_, rc, path_, what, sql);
}

Result<Database> Database::Open(const std::string& path, const OpenOptions& options) {
  // Before SQLite sees the file at all, so that it creates no side files (-wal, -shm) for it.
  if (IsFileBacked(path)) {
    if (auto ok = CheckNotTruncated(path); !ok) {
      return std::unexpected(std::move(ok.error()));
    }
  }
  int flags = SQLITE_OPEN_NOMUTEX;
  if (options.read_only) {
    flags |= SQLITE_OPEN_READONLY;
  } else {
    flags |= SQLITE_OPEN_READWRITE | (options.create ? SQLITE_OPEN_CREATE : 0);
  }
  sqlite3* raw = nullptr;
  if (int rc = sqlite3_open_v2(path.c_str(), &raw, flags, nullptr); rc != SQLITE_OK) {
    Error error = MakeSqliteError(raw, rc, path, "cannot open database", {});
    sqlite3_close_v2(raw);
    return std::unexpected(std::move(error));
  }
  Database db(raw, path, options);
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);

  // sqlite3_open_v2 reads nothing. Read the header first and write nothing before it checks out:
  // a foreign or damaged file must come out of here byte-for-byte unchanged.
  constexpr std::string_view kHeaderRead = "PRAGMA schema_version";
  if (auto ok = ProbeRead(raw, path, "not a readable SQLite database", kHeaderRead); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  constexpr std::string_view kSchemaRead = "SELECT count(*) FROM sqlite_schema";
  if (auto ok = ProbeRead(raw, path, "cannot read the database schema", kSchemaRead); !ok) {
    return std::unexpected(std::move(ok.error()));
  }

  if (!options.read_only && options.wal && IsFileBacked(path)) {
    auto mode = QueryText(db, "PRAGMA journal_mode");
    if (!mode) {
      return std::unexpected(std::move(mode.error()));
    }
    auto pages = db.QueryInt("PRAGMA page_count");
    if (!pages) {
      return std::unexpected(std::move(pages.error()));
    }
    // Only a new database is switched here; see the header for why.
    if (*mode != "wal" && pages->value_or(0) == 0) {
      auto set = QueryText(db, "PRAGMA journal_mode=WAL");
      if (!set) {
        return std::unexpected(std::move(set.error()));
      }
      if (*set != "wal") {
        return std::unexpected(MakePlainError(Error::Kind::kIo, path, "cannot switch to WAL journal mode",
                                              "journal mode stayed " + *set, "PRAGMA journal_mode=WAL"));
      }
    }
  }
  if (auto ok = db.Exec("PRAGMA foreign_keys=ON"); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  std::string_view sync = "PRAGMA synchronous=FULL";
  if (options.durability == Durability::kNormal) {
    sync = "PRAGMA synchronous=NORMAL";
  } else if (options.durability == Durability::kOff) {
    sync = "PRAGMA synchronous=OFF";
  }
  if (auto ok = db.Exec(sync); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  return db;
}

Status Database::Exec(std::string_view sql) {
  if (!db_) {
    return std::unexpected(MakePlainError(Error::Kind::kMisuse, path_, "exec on a closed database", {}, sql));
  }
  if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
    return std::unexpected(MakePlainError(Error::Kind::kMisuse, path_, "SQL text too long"));
  }
  // Statement by statement (rather than sqlite3_exec) so an error names the statement that
  // failed, not the whole script.
  const char* next = sql.data();
  const char* const end = sql.data() + sql.size();
  while (next < end) {
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    const int rc = sqlite3_prepare_v2(db_, next, static_cast<int>(end - next), &stmt, &tail);
    if (tail == nullptr || tail < next || tail > end) {
      tail = end;
    }
    const std::string_view one = Trim(std::string_view(next, static_cast<std::size_t>(tail - next)));
    if (rc != SQLITE_OK) {
      sqlite3_finalize(stmt);
      return std::unexpected(MakeError(rc, "cannot prepare statement", one));
    }
    next = tail;
    if (stmt == nullptr) {
      continue;  // whitespace or a comment
    }
    int step = SQLITE_ROW;
    while (step == SQLITE_ROW) {
      step = sqlite3_step(stmt);
    }
    if (step != SQLITE_DONE) {
      Error error = MakeError(step, "statement failed", one);
      sqlite3_finalize(stmt);
      return std::unexpected(std::move(error));
    }
    sqlite3_finalize(stmt);
  }
  return {};
}

Result<Statement> Database::Prepare(std::string_view sql) const {
  if (!db_) {
    return std::unexpected(
        MakePlainError(Error::Kind::kMisuse, path_, "prepare on a closed database", {}, sql));
  }
  if (sql.size() > static_cast<std::size_t>(INT_MAX)) {
    return std::unexpected(MakePlainError(Error::Kind::kMisuse, path_, "SQL text too long"));
  }
  sqlite3_stmt* stmt = nullptr;
  const char* tail = nullptr;
  const int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), 0, &stmt, &tail);
  if (rc != SQLITE_OK) {
    sqlite3_finalize(stmt);
    return std::unexpected(MakeError(rc, "cannot prepare statement", Trim(sql)));
  }
  if (stmt == nullptr) {
    return std::unexpected(
        MakePlainError(Error::Kind::kMisuse, path_, "no statement in the SQL text", {}, sql));
  }
  Statement result(stmt, path_);
  // A second statement would be silently ignored: refuse it.
  if (tail != nullptr && tail < sql.data() + sql.size()) {
    const std::string_view rest(tail, static_cast<std::size_t>(sql.data() + sql.size() - tail));
    sqlite3_stmt* extra = nullptr;
    const int rc2 = sqlite3_prepare_v2(db_, rest.data(), static_cast<int>(rest.size()), &extra, nullptr);
    sqlite3_finalize(extra);
    if (rc2 != SQLITE_OK || extra != nullptr) {
      return std::unexpected(
          MakePlainError(Error::Kind::kMisuse, path_, "Prepare takes exactly one statement", {}, Trim(sql)));
    }
  }
  return result;
}

Result<std::optional<std::int64_t>> Database::QueryInt(std::string_view sql) const {
  auto stmt = Prepare(sql);
  if (!stmt) {
    return std::unexpected(std::move(stmt.error()));
  }
  auto row = stmt->Step();
  if (!row) {
    return std::unexpected(std::move(row.error()));
  }
  if (!*row || stmt->ColumnCount() < 1 || stmt->IsNull(0)) {
    return std::optional<std::int64_t>();
  }
  if (sqlite3_column_type(stmt->stmt_, 0) != SQLITE_INTEGER) {
    return std::unexpected(
        MakePlainError(Error::Kind::kMisuse, path_, "query result is not an integer", {}, Trim(sql)));
  }
  return std::optional<std::int64_t>(stmt->Int(0));
}

std::int64_t Database::LastInsertRowId() const { return db_ ? sqlite3_last_insert_rowid(db_) : 0; }

int Database::Changes() const { return db_ ? sqlite3_changes(db_) : 0; }

bool Database::in_transaction() const { return db_ && sqlite3_get_autocommit(db_) == 0; }

Status Database::CheckIntegrity(bool quick) const {
  constexpr int kMaxProblems = 10;
  const std::string sql =
      fmt::format("PRAGMA {}({})", quick ? "quick_check" : "integrity_check", kMaxProblems);
  auto stmt = Prepare(sql);
  if (!stmt) {
    return std::unexpected(std::move(stmt.error()));
  }
  std::string problems;
  for (;;) {
    auto row = stmt->Step();
    if (!row) {
      return std::unexpected(std::move(row.error()));
    }
    if (!*row) {
      break;
    }
    const std::string_view line = stmt->TextView(0);
    if (line == "ok") {
      continue;
    }
    if (!problems.empty()) {
      problems += "; ";
    }
    problems += line;
  }
  if (!problems.empty()) {
    return std::unexpected(
        MakePlainError(Error::Kind::kCorrupt, path_, "integrity check failed", problems, sql));
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Transaction

Result<Transaction> Transaction::Begin(Database& db, Mode mode) {
  const std::string_view sql = mode == Mode::kImmediate ? "BEGIN IMMEDIATE" : "BEGIN DEFERRED";
  if (db.in_transaction()) {
    return std::unexpected(MakePlainError(Error::Kind::kMisuse, db.path(),
                                          "a transaction is already open (not nestable)", {}, sql));
  }
  if (auto ok = db.Exec(sql); !ok) {
    return std::unexpected(std::move(ok.error()));
  }
  return Transaction(&db);
}

Transaction::Transaction(Transaction&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}

Transaction::~Transaction() {
  if (db_ != nullptr) {
    (void)Rollback();
  }
}

Status Transaction::Commit() {
  if (db_ == nullptr) {
    return std::unexpected(
        MakePlainError(Error::Kind::kMisuse, "", "commit of a finished transaction", {}, "COMMIT"));
  }
  Database* db = std::exchange(db_, nullptr);
  auto ok = db->Exec("COMMIT");
  if (!ok && db->in_transaction()) {
    // SQLite keeps the transaction open after some failures (SQLITE_BUSY): end it, so that a
    // failed Commit() always means "nothing of it happened".
    (void)db->Exec("ROLLBACK");
  }
  return ok;
}

Status Transaction::Rollback() {
  if (db_ == nullptr) {
    return {};
  }
  Database* db = std::exchange(db_, nullptr);
  // Some errors (SQLITE_FULL, SQLITE_IOERR ...) roll back by themselves.
  if (!db->in_transaction()) {
    return {};
  }
  return db->Exec("ROLLBACK");
}

Status WithTransaction(Database& db, const std::function<Status()>& body) {
  auto tx = Transaction::Begin(db, Transaction::Mode::kImmediate);
  if (!tx) {
    return std::unexpected(std::move(tx.error()));
  }
  Status result;
  try {
    result = body();
  } catch (...) {
    (void)tx->Rollback();
    throw;
  }
  if (!result) {
    (void)tx->Rollback();
    return result;
  }
  return tx->Commit();
}

}  // namespace ics::storage
