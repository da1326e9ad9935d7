// Tests of the RAII SQLite layer: typed binds and columns, error messages, transactions and the
// read-only / WAL behaviour that operator tools rely on.
// Method: real SQLite files in a fresh temporary directory, checked with plain SQL queries and
// with a second connection where visibility between connections matters.
#include "storage/database.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "test_util.h"

namespace ics::storage {
namespace {

using testing::TempDir;

Database OpenOrDie(const std::string& path, const OpenOptions& options = {}) {
  auto db = Database::Open(path, options);
  REQUIRE_MESSAGE(db.has_value(), (db ? "" : db.error().message));
  return std::move(*db);
}

void ExecOrDie(Database& db, std::string_view sql) {
  auto ok = db.Exec(sql);
  REQUIRE_MESSAGE(ok.has_value(), (ok ? "" : ok.error().message));
}

std::int64_t Count(const Database& db, std::string_view table) {
  auto n = db.QueryInt(std::string("SELECT count(*) FROM ") + std::string(table));
  REQUIRE_MESSAGE(n.has_value(), (n ? "" : n.error().message));
  return n->value_or(-1);
}

TEST_CASE("database: binds and columns round-trip integers, reals, text, blobs and NULL") {
  TempDir dir;
  Database db = OpenOrDie(dir.File("types.db"));
  ExecOrDie(db, "CREATE TABLE t(k INTEGER PRIMARY KEY, i INTEGER, r REAL, s TEXT, b BLOB)");
  auto insert = db.Prepare("INSERT INTO t(k, i, r, s, b) VALUES(?1, ?2, ?3, ?4, ?5)");
  REQUIRE(insert.has_value());

  const std::string with_nul("a\0b\xc3\xa9", 5);  // embedded NUL and UTF-8 survive
  const std::vector<std::uint8_t> bytes = {0x00, 0xff, 0x10, 0x00};
  const std::optional<std::int64_t> none;
  const std::optional<std::int64_t> some = 42;

  insert->Bind(1, 1)
      .Bind(2, std::numeric_limits<std::int64_t>::min())
      .Bind(3, 2.5)
      .Bind(4, std::string_view(with_nul))
      .Bind(5, std::span<const std::uint8_t>(bytes));
  REQUIRE(insert->Run().has_value());
  insert->Reset();
  insert->Bind(1, 2)
      .Bind(2, std::uint64_t{std::numeric_limits<std::int64_t>::max()})
      .Bind(3, -1e300)
      .Bind(4, "")
      .Bind(5, std::span<const std::uint8_t>());
  REQUIRE(insert->Run().has_value());
  insert->Reset();
  insert->Bind(1, 3).Bind(2, none).Bind(3, 0.0).BindNull(4).Bind(5, some);
  REQUIRE(insert->Run().has_value());

  auto select = db.Prepare("SELECT i, r, s, b, typeof(s), typeof(b) FROM t ORDER BY k");
  REQUIRE(select.has_value());
  REQUIRE(select->ColumnCount() == 6);

  REQUIRE(select->Step().value());
  CHECK(select->Int(0) == std::numeric_limits<std::int64_t>::min());
  CHECK(select->Real(1) == 2.5);
  CHECK(select->Text(2) == with_nul);
  CHECK(select->Blob(3) == bytes);
  CHECK_FALSE(select->IsNull(3));

  REQUIRE(select->Step().value());
  CHECK(select->Int(0) == std::numeric_limits<std::int64_t>::max());
  CHECK(select->Real(1) == -1e300);
  CHECK(select->TextView(2).empty());
  CHECK(select->Text(4) == "text");  // empty text, not NULL
  CHECK(select->BlobView(3).empty());
  CHECK(select->Text(5) == "blob");  // empty blob, not NULL

  REQUIRE(select->Step().value());
  CHECK(select->IsNull(0));
  CHECK(select->IsNull(2));
  CHECK(select->Int(3) == 42);  // an engaged optional binds its value

  CHECK_FALSE(select->Step().value());
  CHECK(db.LastInsertRowId() == 3);
}

TEST_CASE("database: a bind error is reported by Step, not applied, and Reset clears it") {
  TempDir dir;
  Database db = OpenOrDie(dir.File("bind.db"));
  ExecOrDie(db, "CREATE TABLE t(a INTEGER)");
  auto insert = db.Prepare("INSERT INTO t(a) VALUES(?1)");
  REQUIRE(insert.has_value());

  insert->Bind(1, 7).Bind(2, 8);  // there is no parameter 2
  auto step = insert->Step();
  REQUIRE_FALSE(step.has_value());
  CHECK(step.error().kind == Error::Kind::kMisuse);
  CHECK(step.error().message.find(dir.File("bind.db")) != std::string::npos);
  CHECK(step.error().message.find("parameter 2") != std::string::npos);
  CHECK(step.error().message.find("INSERT INTO t(a) VALUES(?1)") != std::string::npos);
  CHECK(Count(db, "t") == 0);

  insert->Bind(1, std::numeric_limits<std::uint64_t>::max());  // above INT64_MAX
  auto run = insert->Run();
  REQUIRE_FALSE(run.has_value());
  CHECK(run.error().kind == Error::Kind::kMisuse);
  CHECK(Count(db, "t") == 0);

  insert->Reset();
  REQUIRE(insert->Bind(1, 9).Run().has_value());
  CHECK(Count(db, "t") == 1);
}

TEST_CASE("database: errors name the file, what failed, SQLite's message and the SQL") {
  TempDir dir;
  const std::string path = dir.File("errors.db");
  Database db = OpenOrDie(path);

  auto bad = db.Prepare("SELEC 1");
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().message.find(path) != std::string::npos);
  CHECK(bad.error().message.find("cannot prepare") != std::string::npos);
  CHECK(bad.error().message.find("syntax error") != std::string::npos);
  CHECK(bad.error().message.find("SELEC 1") != std::string::npos);

  // Exec names the statement that failed, not the whole script.
  auto script = db.Exec(
      "CREATE TABLE u(a INTEGER UNIQUE); INSERT INTO u VALUES(1);\n"
      "INSERT INTO u VALUES(1); INSERT INTO u VALUES(2);");
  REQUIRE_FALSE(script.has_value());
  CHECK(script.error().kind == Error::Kind::kConstraint);
  CHECK((script.error().sqlite_code & 0xff) == 19);  // SQLITE_CONSTRAINT
  CHECK(script.error().message.find("UNIQUE constraint failed: u.a") != std::string::npos);
  CHECK(script.error().message.find("in: INSERT INTO u VALUES(1)") != std::string::npos);
  CHECK(script.error().message.find("CREATE TABLE") == std::string::npos);
  CHECK(Count(db, "u") == 1);  // statements before the failure ran (Exec is not a transaction)

  auto missing = db.QueryInt("SELECT count(*) FROM nowhere");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().message.find("no such table: nowhere") != std::string::npos);
}

TEST_CASE("database: Prepare takes exactly one statement; QueryInt tells no row from NULL") {
  Database db = OpenOrDie(":memory:");
  auto two = db.Prepare("SELECT 1; SELECT 2");
  REQUIRE_FALSE(two.has_value());
  CHECK(two.error().kind == Error::Kind::kMisuse);
  CHECK(db.Prepare("SELECT 1; -- a trailing comment is fine").has_value());
  CHECK_FALSE(db.Prepare("  ").has_value());

  CHECK(db.QueryInt("SELECT 41 + 1").value() == std::optional<std::int64_t>(42));
  CHECK(db.QueryInt("SELECT NULL").value() == std::nullopt);
  CHECK(db.QueryInt("SELECT 1 WHERE 0").value() == std::nullopt);
  auto text = db.QueryInt("SELECT 'x'");
  REQUIRE_FALSE(text.has_value());
  CHECK(text.error().kind == Error::Kind::kMisuse);
}

TEST_CASE("database: a transaction commits, or rolls back when dropped, on error and on throw") {
  TempDir dir;
  Database db = OpenOrDie(dir.File("tx.db"));
  ExecOrDie(db, "CREATE TABLE t(a INTEGER UNIQUE)");

  {
    auto tx = Transaction::Begin(db);
    REQUIRE(tx.has_value());
    CHECK(db.in_transaction());
    ExecOrDie(db, "INSERT INTO t VALUES(1)");
    REQUIRE(tx->Commit().has_value());
    CHECK_FALSE(db.in_transaction());
  }
  {
    auto tx = Transaction::Begin(db, Transaction::Mode::kDeferred);
    REQUIRE(tx.has_value());
    ExecOrDie(db, "INSERT INTO t VALUES(2)");
    // Dropped without Commit(): rolled back.
  }
  CHECK_FALSE(db.in_transaction());
  CHECK(Count(db, "t") == 1);

  // Not nestable.
  {
    auto outer = Transaction::Begin(db);
    REQUIRE(outer.has_value());
    auto inner = Transaction::Begin(db);
    REQUIRE_FALSE(inner.has_value());
    CHECK(inner.error().kind == Error::Kind::kMisuse);
  }

  // WithTransaction: an error from the body rolls back everything it did.
  auto failed = WithTransaction(db, [&]() -> Status {
    if (auto ok = db.Exec("INSERT INTO t VALUES(3)"); !ok) {
      return ok;
    }
    return db.Exec("INSERT INTO t VALUES(1)");  // UNIQUE violation
  });
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().kind == Error::Kind::kConstraint);
  CHECK_FALSE(db.in_transaction());
  CHECK(Count(db, "t") == 1);

  // ... and so does an exception, which goes on to the caller.
  CHECK_THROWS_AS(WithTransaction(db,
                                  [&]() -> Status {
                                    ExecOrDie(db, "INSERT INTO t VALUES(4)");
                                    throw std::runtime_error("body failed");
                                  }),
                  std::runtime_error);
  CHECK_FALSE(db.in_transaction());
  CHECK(Count(db, "t") == 1);

  REQUIRE(WithTransaction(db, [&]() { return db.Exec("INSERT INTO t VALUES(5)"); }).has_value());
  CHECK(Count(db, "t") == 2);

  // The commit is durable: another connection sees it.
  Database other = OpenOrDie(dir.File("tx.db"), {.read_only = true});
  CHECK(Count(other, "t") == 2);
}

TEST_CASE("database: new databases use WAL, foreign keys and the requested synchronous level") {
  TempDir dir;
  Database full = OpenOrDie(dir.File("full.db"));
  auto mode = full.Prepare("PRAGMA journal_mode");
  REQUIRE(mode.has_value());
  REQUIRE(mode->Step().value());
  CHECK(mode->Text(0) == "wal");
  CHECK(full.QueryInt("PRAGMA foreign_keys").value() == std::optional<std::int64_t>(1));
  CHECK(full.QueryInt("PRAGMA synchronous").value() == std::optional<std::int64_t>(2));

  Database normal = OpenOrDie(dir.File("normal.db"), {.durability = Durability::kNormal});
  CHECK(normal.QueryInt("PRAGMA synchronous").value() == std::optional<std::int64_t>(1));
  ExecOrDie(normal,
            "CREATE TABLE p(id INTEGER PRIMARY KEY); "
            "CREATE TABLE c(p INTEGER REFERENCES p(id))");
  auto orphan = normal.Exec("INSERT INTO c VALUES(7)");
  REQUIRE_FALSE(orphan.has_value());
  CHECK(orphan.error().kind == Error::Kind::kConstraint);
}

TEST_CASE("database: opening a missing file without create fails and creates nothing") {
  TempDir dir;
  auto db = Database::Open(dir.File("absent.db"), {.create = false});
  REQUIRE_FALSE(db.has_value());
  CHECK(db.error().kind == Error::Kind::kIo);
  CHECK(db.error().message.find(dir.File("absent.db")) != std::string::npos);
  auto reader = Database::Open(dir.File("absent.db"), {.read_only = true});
  REQUIRE_FALSE(reader.has_value());
  CHECK(dir.Entries().empty());
}

TEST_CASE("database: a read-only connection reads a WAL database being written, and cannot write") {
  TempDir dir;
  const std::string path = dir.File("shared.db");
  Database writer = OpenOrDie(path);
  ExecOrDie(writer, "CREATE TABLE t(a INTEGER); INSERT INTO t VALUES(1), (2)");

  Database reader = OpenOrDie(path, {.read_only = true});
  CHECK(reader.read_only());
  CHECK(Count(reader, "t") == 2);

  // A reader in the middle of a query does not block the writer (WAL), and keeps its snapshot.
  auto scan = reader.Prepare("SELECT a FROM t ORDER BY a");
  REQUIRE(scan.has_value());
  REQUIRE(scan->Step().value());
  CHECK(scan->Int(0) == 1);
  ExecOrDie(writer, "INSERT INTO t VALUES(3)");
  REQUIRE(scan->Step().value());
  CHECK(scan->Int(0) == 2);
  CHECK_FALSE(scan->Step().value());
  scan->Reset();
  CHECK(Count(reader, "t") == 3);  // a new read sees the new commit

  auto write = reader.Exec("INSERT INTO t VALUES(4)");
  REQUIRE_FALSE(write.has_value());
  CHECK(write.error().kind == Error::Kind::kReadOnly);
  CHECK(write.error().message.find(path) != std::string::npos);
  CHECK(Count(writer, "t") == 3);
}

TEST_CASE("database: CheckIntegrity passes a sound database and reports a damaged page") {
  TempDir dir;
  const std::string path = dir.File("damaged.db");
  {
    Database db = OpenOrDie(path);
    ExecOrDie(db, "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT); CREATE INDEX tb ON t(b)");
    ExecOrDie(db,
              "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 2000) "
              "INSERT INTO t SELECT x, printf('row %08d', x) FROM n");
    CHECK(db.CheckIntegrity().has_value());
    CHECK(db.CheckIntegrity(false).has_value());
  }  // closing the last connection checkpoints the WAL into the file

  std::string bytes = testing::ReadAll(path);
  REQUIRE(bytes.size() > 6 * 4096);
  for (std::size_t i = 4 * 4096; i < 5 * 4096; ++i) {  // scribble over page 5
    bytes[i] = static_cast<char>(0x5a);
  }
  testing::WriteAll(path, bytes);

  auto db = Database::Open(path, {.read_only = true});
  REQUIRE(db.has_value());  // page 1 is fine; only a full check reads page 5
  auto check = db->CheckIntegrity(false);
  REQUIRE_FALSE(check.has_value());
  CHECK(check.error().kind == Error::Kind::kCorrupt);
  CHECK(check.error().message.find(path) != std::string::npos);
}

}  // namespace
}  // namespace ics::storage
