// Schema migrations keyed on PRAGMA user_version, and the identity of our database files.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "storage/database.h"

namespace ics::storage {

// Migration `version` takes a database at user_version == version - 1 to `version`.
struct Migration {
  int version = 0;
  std::string_view sql;
};

// What a database file is for. application_id (PRAGMA application_id) tells our files apart from
// each other and from foreign SQLite files, so a file of the wrong kind is refused, not altered.
struct SchemaSpec {
  std::string_view name;                  // "epoch log", "bundle store" ... (for error messages)
  std::int32_t application_id = 0;        // unique per kind of file
  std::span<const Migration> migrations;  // versions 1..N, in order
};

// Brings `db` to the newest version in `spec`, each migration in its own transaction.
// A new (empty) database gets the application_id and every migration. Errors (nothing written):
//   kNewerSchema    user_version above the newest known (written by newer software),
//   kForeignSchema  an application_id that is not spec.application_id, or tables but no id,
//   kCorrupt        not a database.
//   kMisuse         spec.application_id == 0, or migrations not numbered 1..N in order.
// Once the file is known to be ours (or new), a database not yet in WAL is switched to it when
// db.options().wal. Each migration re-checks the version inside its IMMEDIATE transaction, so two
// processes migrating the same file at once apply each migration once.
// Run it before anything else creates tables in the file (an EpochStore sharing the file, say):
// a file with tables but no application_id is foreign.
// REQUIRES: db not read-only (use CheckSchema for readers); kReadOnly otherwise.
Status Migrate(Database& db, const SchemaSpec& spec);

// For read-only users: the database is of this kind and at a version this build understands.
// Returns the user_version found (possibly below the newest: the caller decides). An empty,
// never-migrated database is kForeignSchema. Reads only.
Result<int> CheckSchema(const Database& db, const SchemaSpec& spec);

}  // namespace ics::storage
