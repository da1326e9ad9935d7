#include "sqlite_error.h"

#include <fmt/format.h>

#include <string>
#include <utility>

namespace ics::storage::internal {

Error::Kind KindOf(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Error::Kind::kBusy;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
      return Error::Kind::kCorrupt;
    case SQLITE_CONSTRAINT:
      return Error::Kind::kConstraint;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
    case SQLITE_MISMATCH:
      return Error::Kind::kMisuse;
    case SQLITE_FULL:
      return Error::Kind::kFull;
    case SQLITE_READONLY:
      return Error::Kind::kReadOnly;
    case SQLITE_IOERR:
    case SQLITE_CANTOPEN:
    case SQLITE_PROTOCOL:
    case SQLITE_NOLFS:
    case SQLITE_PERM:
      return Error::Kind::kIo;
    default:
      return Error::Kind::kOther;
  }
}

Error MakeSqliteError(sqlite3* db, int rc, std::string_view path, std::string_view what,
                      std::string_view sql) {
  // sqlite3_errmsg() describes the connection's last failure, which is not always this one
  // (a bind error, say, or a code we computed ourselves): then the generic text is more honest.
  const char* detail =
      (db != nullptr && sqlite3_extended_errcode(db) == rc) ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
  Error error = MakePlainError(KindOf(rc), path, what, detail, sql);
  error.sqlite_code = rc;
  return error;
}

Error MakePlainError(Error::Kind kind, std::string_view path, std::string_view what, std::string_view detail,
                     std::string_view sql) {
  std::string message = fmt::format("{}: {}", path.empty() ? "<temporary database>" : path, what);
  if (!detail.empty()) {
    message += fmt::format(" ({})", detail);
  }
  if (!sql.empty()) {
    message += fmt::format(" in: {}", sql);
  }
  return Error{kind, std::move(message), 0};
}

}  // namespace ics::storage::internal
