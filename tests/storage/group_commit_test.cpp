// Tests of group commit: tickets, the durable watermark, automatic flushes at max_batch, and a
// failed batch that is rolled back whole and never reported durable.
// Method: a real WAL file; what is durable is checked by counting rows through a second
// connection and after re-opening the file.
#include "storage/group_commit.h"

#include <doctest/doctest.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "storage/database.h"
#include "test_util.h"

namespace ics::storage {
namespace {

using testing::TempDir;

Database OpenOrDie(const std::string& path, const OpenOptions& options = {}) {
  auto db = Database::Open(path, options);
  REQUIRE_MESSAGE(db.has_value(), (db ? "" : db.error().message));
  return std::move(*db);
}

std::int64_t Rows(const Database& db) {
  auto n = db.QueryInt("SELECT count(*) FROM records");
  REQUIRE_MESSAGE(n.has_value(), (n ? "" : n.error().message));
  return n->value_or(-1);
}

// A write inserting record `id` (ids are UNIQUE, so writing one twice fails the batch).
GroupCommit::Write Insert(std::int64_t id) {
  return [id](Database& db) -> Status {
    auto stmt = db.Prepare("INSERT INTO records(id, body) VALUES(?1, ?2)");
    if (!stmt) {
      return std::unexpected(stmt.error());
    }
    return stmt->Bind(1, id).Bind(2, "payload").Run();
  };
}

struct Fixture {
  TempDir dir;
  std::string path = dir.File("group.db");
  Database db = [this] {
    Database d = OpenOrDie(path);
    REQUIRE(d.Exec("CREATE TABLE records(id INTEGER PRIMARY KEY, body TEXT NOT NULL)").has_value());
    return d;
  }();
  Database observer = OpenOrDie(path, {.read_only = true});
};

TEST_CASE("group commit: hands out tickets and makes them durable at Flush") {
  Fixture f;
  GroupCommit group(f.db, 100);
  CHECK(group.Stage(Insert(1)).value() == 1);
  CHECK(group.Stage(Insert(2)).value() == 2);
  CHECK(group.Stage(Insert(3)).value() == 3);
  CHECK(group.pending() == 3);
  CHECK(group.durable() == 0);
  CHECK_FALSE(group.IsDurable(1));
  CHECK(Rows(f.observer) == 0);  // staged writes have not even run

  CHECK(group.Flush().value() == 3);
  CHECK(group.pending() == 0);
  CHECK(group.durable() == 3);
  CHECK(group.commits() == 1);
  CHECK(group.IsDurable(1));
  CHECK(group.IsDurable(3));
  CHECK_FALSE(group.IsDurable(4));
  CHECK_FALSE(group.IsDurable(0));
  CHECK(Rows(f.observer) == 3);

  // An empty flush commits nothing.
  CHECK(group.Flush().value() == 3);
  CHECK(group.commits() == 1);

  CHECK(group.Stage(Insert(4)).value() == 4);
  CHECK(group.Flush().value() == 4);
  CHECK(group.commits() == 2);

  // Durable means on disk: a fresh connection after closing the writer sees every row.
  f.db = OpenOrDie(f.dir.File("other.db"));  // closes the writer's connection to group.db
  Database reopened = OpenOrDie(f.path, {.read_only = true});
  CHECK(Rows(reopened) == 4);
}

TEST_CASE("group commit: flushes by itself when max_batch writes are staged") {
  Fixture f;
  GroupCommit group(f.db, 3);
  CHECK(group.Stage(Insert(1)).value() == 1);
  CHECK(group.Stage(Insert(2)).value() == 2);
  CHECK(group.durable() == 0);
  CHECK(group.Stage(Insert(3)).value() == 3);  // the third fills the batch
  CHECK(group.pending() == 0);
  CHECK(group.durable() == 3);
  CHECK(group.commits() == 1);
  CHECK(Rows(f.observer) == 3);
  CHECK(group.Stage(Insert(4)).value() == 4);
  CHECK(group.pending() == 1);
  CHECK(group.durable() == 3);
}

TEST_CASE("group commit: a failed batch is rolled back whole and its tickets never become durable") {
  Fixture f;
  GroupCommit group(f.db, 100);
  REQUIRE(group.Stage(Insert(1)).has_value());
  REQUIRE(group.Flush().has_value());

  CHECK(group.Stage(Insert(2)).value() == 2);
  CHECK(group.Stage(Insert(3)).value() == 3);
  CHECK(group.Stage(Insert(1)).value() == 4);  // duplicate id: fails the batch
  auto failed = group.Flush();
  REQUIRE_FALSE(failed.has_value());
  CHECK(failed.error().kind == Error::Kind::kConstraint);
  CHECK(failed.error().message.find(f.path) != std::string::npos);
  CHECK(group.durable() == 1);
  CHECK(group.pending() == 0);  // dropped
  CHECK(group.commits() == 1);
  CHECK_FALSE(f.db.in_transaction());
  CHECK(Rows(f.observer) == 1);  // rows 2 and 3 were rolled back with the bad one

  // Later batches commit, and the failed tickets stay not durable below the watermark.
  CHECK(group.Stage(Insert(5)).value() == 5);
  CHECK(group.Flush().value() == 5);
  CHECK(group.durable() == 5);
  CHECK(group.IsDurable(1));
  CHECK_FALSE(group.IsDurable(2));
  CHECK_FALSE(group.IsDurable(3));
  CHECK_FALSE(group.IsDurable(4));
  CHECK(group.IsDurable(5));
  CHECK(Rows(f.observer) == 2);
}

TEST_CASE("group commit: a failed automatic flush is reported by Stage") {
  Fixture f;
  GroupCommit group(f.db, 2);
  CHECK(group.Stage(Insert(1)).value() == 1);
  auto staged = group.Stage(Insert(1));
  REQUIRE_FALSE(staged.has_value());
  CHECK(staged.error().kind == Error::Kind::kConstraint);
  CHECK(group.durable() == 0);
  CHECK(group.pending() == 0);
  CHECK(Rows(f.observer) == 0);
  CHECK(group.Stage(Insert(7)).value() == 3);  // tickets keep counting
  CHECK(group.Flush().value() == 3);
  CHECK_FALSE(group.IsDurable(1));
  CHECK(group.IsDurable(3));
}

TEST_CASE("group commit: a write that throws rolls its batch back and the exception goes on") {
  Fixture f;
  GroupCommit group(f.db, 100);
  REQUIRE(group.Stage(Insert(1)).has_value());
  REQUIRE(group.Stage([](Database&) -> Status { throw std::runtime_error("write failed"); }).has_value());
  CHECK_THROWS_AS((void)group.Flush(), std::runtime_error);
  CHECK(group.pending() == 0);
  CHECK(group.durable() == 0);
  CHECK_FALSE(f.db.in_transaction());
  CHECK(Rows(f.observer) == 0);
}

}  // namespace
}  // namespace ics::storage
