// Tests of schema migrations and of the refusal to touch files that are not ours: a new file is
// migrated from 0 to N, a partly migrated one is finished, and a failed migration leaves nothing.
// Method: real files in a temporary directory; every refusal is checked to give the right error
// kind and to leave the file byte-for-byte unchanged (checksum) with no side files created.
#include "storage/schema.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <string>

#include "storage/database.h"
#include "test_util.h"

namespace ics::storage {
namespace {

using testing::Checksum;
using testing::TempDir;

constexpr std::int32_t kTestAppId = 0x49435354;  // "ICST"

constexpr Migration kMigrations[] = {
    {1, "CREATE TABLE notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL)"},
    {2, "ALTER TABLE notes ADD COLUMN author TEXT; INSERT INTO notes(body) VALUES('v2')"},
    {3,
     "CREATE TABLE tags(note INTEGER REFERENCES notes(id), tag TEXT); "
     "INSERT INTO notes(body) VALUES('v3')"},
};
constexpr SchemaSpec kSpec{"test notes", kTestAppId, kMigrations};
constexpr SchemaSpec kSpecV1{"test notes", kTestAppId, std::span(kMigrations, 1)};

Database OpenOrDie(const std::string& path, const OpenOptions& options = {}) {
  auto db = Database::Open(path, options);
  REQUIRE_MESSAGE(db.has_value(), (db ? "" : db.error().message));
  return std::move(*db);
}

std::int64_t Int(const Database& db, std::string_view sql) {
  auto value = db.QueryInt(sql);
  REQUIRE_MESSAGE(value.has_value(), (value ? "" : value.error().message));
  return value->value_or(-1);
}

std::string JournalMode(const Database& db) {
  auto stmt = db.Prepare("PRAGMA journal_mode");
  REQUIRE(stmt.has_value());
  REQUIRE(stmt->Step().value());
  return stmt->Text(0);
}

// A database of ours at version 3 with a few hundred rows (several pages), closed.
void MakeOurs(const std::string& path) {
  Database db = OpenOrDie(path);
  REQUIRE(Migrate(db, kSpec).has_value());
  REQUIRE(db.Exec("WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 500) "
                  "INSERT INTO notes(body) SELECT printf('note number %06d', x) FROM n")
              .has_value());
}

// Opens `path` writable and migrates it; expects `kind`, and the file unchanged afterwards.
void ExpectRefusedUnchanged(const TempDir& dir, const std::string& path, Error::Kind kind,
                            std::string_view message_part) {
  const std::uint64_t before = Checksum(path);
  const auto entries_before = dir.Entries();
  {
    auto db = Database::Open(path);
    Error error;
    if (db) {
      auto migrated = Migrate(*db, kSpec);
      REQUIRE_FALSE(migrated.has_value());
      error = migrated.error();
    } else {
      error = db.error();
    }
    INFO(error.message);
    CHECK(error.kind == kind);
    CHECK(error.message.find(path) != std::string::npos);
    CHECK(error.message.find(message_part) != std::string::npos);
  }
  CHECK(Checksum(path) == before);
  CHECK(dir.Entries() == entries_before);  // no side file left behind either
  {
    auto reader = Database::Open(path, {.read_only = true});
    if (reader) {
      auto checked = CheckSchema(*reader, kSpec);
      REQUIRE_FALSE(checked.has_value());
      CHECK(checked.error().kind == kind);
    } else {
      CHECK(reader.error().kind == kind);
    }
  }
  // A read-only connection to a WAL file may leave the (empty) -wal and -shm side files: that is
  // SQLite's way, and harmless. The database file itself must not change.
  CHECK(Checksum(path) == before);
  for (const std::string& name : dir.Entries()) {
    const std::string base = path.substr(path.rfind('/') + 1);
    CHECK_MESSAGE((entries_before.contains(name) || name == base + "-wal" || name == base + "-shm"), name);
  }
}

TEST_CASE("schema: Migrate takes a new database from version 0 to N and marks it ours") {
  TempDir dir;
  const std::string path = dir.File("new.db");
  {
    Database db = OpenOrDie(path);
    CHECK(Int(db, "PRAGMA user_version") == 0);
    REQUIRE(Migrate(db, kSpec).has_value());
    CHECK(Int(db, "PRAGMA user_version") == 3);
    CHECK(Int(db, "PRAGMA application_id") == kTestAppId);
    CHECK(Int(db, "SELECT count(*) FROM notes") == 2);  // one row from v2, one from v3
    CHECK(Int(db, "SELECT count(*) FROM tags") == 0);
  }
  // Re-opening and migrating again is a no-op.
  Database db = OpenOrDie(path);
  REQUIRE(Migrate(db, kSpec).has_value());
  CHECK(Int(db, "PRAGMA user_version") == 3);
  CHECK(Int(db, "SELECT count(*) FROM notes") == 2);
  CHECK(CheckSchema(db, kSpec).value() == 3);
}

TEST_CASE("schema: Migrate finishes a database left at an older version") {
  TempDir dir;
  const std::string path = dir.File("older.db");
  {
    Database db = OpenOrDie(path);
    REQUIRE(Migrate(db, kSpecV1).has_value());
    CHECK(Int(db, "PRAGMA user_version") == 1);
    CHECK(Int(db, "SELECT count(*) FROM notes") == 0);
  }
  {
    Database reader = OpenOrDie(path, {.read_only = true});
    CHECK(CheckSchema(reader, kSpec).value() == 1);  // older, but ours: the reader decides
  }
  Database db = OpenOrDie(path);
  REQUIRE(Migrate(db, kSpec).has_value());
  CHECK(Int(db, "PRAGMA user_version") == 3);
  CHECK(Int(db, "SELECT count(*) FROM notes") == 2);  // migrations 2 and 3 each ran once
}

TEST_CASE("schema: a failing migration is rolled back and leaves the previous version") {
  TempDir dir;
  const std::string path = dir.File("failing.db");
  constexpr Migration kBroken[] = {
      kMigrations[0],
      {2, "CREATE TABLE half(a INTEGER); INSERT INTO nowhere VALUES(1)"},
  };
  Database db = OpenOrDie(path);
  auto migrated = Migrate(db, SchemaSpec{"test notes", kTestAppId, kBroken});
  REQUIRE_FALSE(migrated.has_value());
  CHECK(migrated.error().message.find("migration to version 2") != std::string::npos);
  CHECK(migrated.error().message.find("no such table: nowhere") != std::string::npos);
  CHECK(migrated.error().message.find(path) != std::string::npos);
  CHECK(Int(db, "PRAGMA user_version") == 1);
  CHECK(Int(db, "SELECT count(*) FROM sqlite_schema WHERE name = 'half'") == 0);
  CHECK_FALSE(db.in_transaction());
}

TEST_CASE("schema: an existing non-WAL database of ours is switched to WAL by Migrate") {
  TempDir dir;
  const std::string path = dir.File("rollback.db");
  {
    Database db = OpenOrDie(path, {.wal = false});
    REQUIRE(Migrate(db, kSpec).has_value());
    CHECK(JournalMode(db) == "delete");
  }
  Database db = OpenOrDie(path);
  CHECK(JournalMode(db) == "delete");  // Open leaves an existing file's mode alone
  REQUIRE(Migrate(db, kSpec).has_value());
  CHECK(JournalMode(db) == "wal");
}

TEST_CASE("schema: a text file is refused as corrupt and left unchanged") {
  TempDir dir;
  const std::string path = dir.File("notes.txt");
  testing::WriteAll(path, "This is a plain text file, not a database.\nSecond line.\n");
  ExpectRefusedUnchanged(dir, path, Error::Kind::kCorrupt, "not a readable SQLite database");

  const std::string tiny = dir.File("tiny.txt");
  testing::WriteAll(tiny, "hello");
  ExpectRefusedUnchanged(dir, tiny, Error::Kind::kCorrupt, "not a readable SQLite database");
}

TEST_CASE("schema: a truncated database is refused as corrupt and left unchanged") {
  TempDir dir;
  const std::string path = dir.File("truncated.db");
  MakeOurs(path);
  std::string bytes = testing::ReadAll(path);
  REQUIRE(bytes.size() >= 5 * 4096);

  testing::WriteAll(path, bytes.substr(0, bytes.size() / 2 + 100));  // mid-page
  ExpectRefusedUnchanged(dir, path, Error::Kind::kCorrupt, "truncated database");

  testing::WriteAll(path, bytes.substr(0, 2 * 4096));  // on a page boundary
  ExpectRefusedUnchanged(dir, path, Error::Kind::kCorrupt, "truncated database");

  testing::WriteAll(path, bytes.substr(0, 60));  // inside the header
  ExpectRefusedUnchanged(dir, path, Error::Kind::kCorrupt, "truncated database");
}

TEST_CASE("schema: a database of another application is refused and left unchanged") {
  TempDir dir;
  const std::string foreign = dir.File("foreign.db");
  {
    // Another application's file, in the default rollback journal mode: switching it to WAL
    // would write its header, so even that must not happen.
    Database db = OpenOrDie(foreign, {.wal = false});
    REQUIRE(db.Exec("PRAGMA application_id = 0x0badf00d; PRAGMA user_version = 1; "
                    "CREATE TABLE other(x); INSERT INTO other VALUES('theirs')")
                .has_value());
  }
  ExpectRefusedUnchanged(dir, foreign, Error::Kind::kForeignSchema, "application_id is 0x0badf00d");

  const std::string anonymous = dir.File("anonymous.db");
  {
    Database db = OpenOrDie(anonymous, {.wal = false});
    REQUIRE(db.Exec("CREATE TABLE other(x)").has_value());
  }
  ExpectRefusedUnchanged(dir, anonymous, Error::Kind::kForeignSchema, "no application_id");
}

TEST_CASE("schema: a database at a newer schema version is refused and left unchanged") {
  TempDir dir;
  const std::string path = dir.File("newer.db");
  MakeOurs(path);
  {
    Database db = OpenOrDie(path);
    REQUIRE(db.Exec("PRAGMA user_version = 7").has_value());
  }
  ExpectRefusedUnchanged(dir, path, Error::Kind::kNewerSchema, "schema version 7");
}

TEST_CASE("schema: Migrate refuses read-only connections and malformed specs") {
  TempDir dir;
  const std::string path = dir.File("spec.db");
  MakeOurs(path);
  Database reader = OpenOrDie(path, {.read_only = true});
  auto ro = Migrate(reader, kSpec);
  REQUIRE_FALSE(ro.has_value());
  CHECK(ro.error().kind == Error::Kind::kReadOnly);

  Database db = OpenOrDie(path);
  constexpr Migration kGap[] = {kMigrations[0], kMigrations[2]};
  auto gap = Migrate(db, SchemaSpec{"gap", kTestAppId, kGap});
  REQUIRE_FALSE(gap.has_value());
  CHECK(gap.error().kind == Error::Kind::kMisuse);
  auto no_id = Migrate(db, SchemaSpec{"no id", 0, kMigrations});
  REQUIRE_FALSE(no_id.has_value());
  CHECK(no_id.error().kind == Error::Kind::kMisuse);

  Database empty = OpenOrDie(dir.File("empty.db"));
  auto unset = CheckSchema(empty, kSpec);
  REQUIRE_FALSE(unset.has_value());
  CHECK(unset.error().kind == Error::Kind::kForeignSchema);
}

}  // namespace
}  // namespace ics::storage
