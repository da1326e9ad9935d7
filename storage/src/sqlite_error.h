// Internal to storage/: turning SQLite result codes into Error values, shared by every source.
#pragma once

#include <sqlite3.h>

#include <string_view>

#include "storage/database.h"

namespace ics::storage::internal {

// The Error::Kind for a SQLite result code (primary or extended).
Error::Kind KindOf(int rc);

// "<path>: <what> (<sqlite message>) in: <sql>". The message comes from `db` when its last error
// is `rc` (so it carries details such as the table name), else from sqlite3_errstr(rc).
Error MakeSqliteError(sqlite3* db, int rc, std::string_view path, std::string_view what,
                      std::string_view sql);

// An error that did not come from SQLite (same message shape, no "(...)" part when `detail` is
// empty).
Error MakePlainError(Error::Kind kind, std::string_view path, std::string_view what,
                     std::string_view detail = {}, std::string_view sql = {});

}  // namespace ics::storage::internal
