// Goal: the SQLite bundle store's segment files keep large bundles exactly as durable as rows:
// round trips, records written but never committed (a crash) ignored and their segment removed,
// segments unlinked only after the commit that removed their last row, torn or altered records
// reported (naming the file and the offset) rather than returned, and version-1 stores migrated
// (rows keep their bytes; seen IDs get integer keys).
// Method: real SQLite files and segment files in a mkdtemp directory; crashes simulated by
// destroying a store with writes staged (nothing committed), damage by editing the files.
#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "bundle_store_test_util.h"
#include "dtn/bundle_store.h"
#include "dtn/sqlite_bundle_store.h"
#include "storage/database.h"

namespace ics::dtn {
namespace {

using test::MakeTestBundle;
using test::TestBundle;

const Eid kDest = Eid::Ipn(3, 1);

// Stores with a 4 KiB threshold and 50,000-byte segments: two 20 KiB bundles per segment.
std::unique_ptr<SqliteBundleStore> OpenStore(const std::string& path, std::uint64_t roll_bytes = 50'000,
                                             std::size_t spare_segments = SqliteBundleStoreOptions{}.spare_segments) {
  SqliteBundleStoreOptions options;
  options.segment_threshold_bytes = 4096;
  options.segment_roll_bytes = roll_bytes;
  options.spare_segments = spare_segments;
  auto store = SqliteBundleStore::Open(path, options);
  REQUIRE_MESSAGE(store.has_value(), (store ? "" : store.error().message));
  return std::move(*store);
}

TestBundle Large(std::uint64_t seq, std::size_t payload_bytes = 20'000) {
  return MakeTestBundle(1, 1000, seq, kDest, Priority::kNormal, 90'000, BundleDisposition::kForward,
                        payload_bytes);
}

std::vector<std::string> SegmentNames(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

std::int64_t QueryInt(const std::string& path, const std::string& sql) {
  auto db = storage::Database::Open(path).value();
  return db.QueryInt(sql).value().value_or(-1);
}

TEST_CASE(
    "segment store: large bundles go to a segment, small ones stay in their row; both survive reopening") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  TestBundle small = MakeTestBundle(1, 1000, 1, kDest, Priority::kNormal, 90'000);
  TestBundle large = Large(2);
  TestBundle exact = Large(3, 4096);  // encoded > 4096 bytes: at the threshold or above goes out
  {
    auto store = OpenStore(path);
    CHECK(store->segments_dir() == path + ".segments");
    REQUIRE(store->Put(small.info, small.bytes).value() == PutStatus::kStored);
    CHECK(store->segment_files() == 0);  // nothing large yet: no segment
    REQUIRE(store->Put(large.info, large.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Put(exact.info, exact.bytes).value() == PutStatus::kStored);
    CHECK(store->segment_files() == 1);
    CHECK(store->ReadBytes(large.info.id).value() == large.bytes);  // staged: read from the segment
    REQUIRE(store->Commit());
    CHECK(store->ReadBytes(small.info.id).value() == small.bytes);
    CHECK(store->ReadBytes(exact.info.id).value() == exact.bytes);
  }
  CHECK(SegmentNames(path + ".segments") == std::vector<std::string>{"00000001.seg"});
  // Two records with their 16-byte headers, back to back.
  CHECK(std::filesystem::file_size(path + ".segments/00000001.seg") ==
        large.bytes.size() + exact.bytes.size() + 2 * 16);
  CHECK(QueryInt(path, "SELECT count(*) FROM bundles WHERE segment IS NOT NULL AND length(bytes) = 0") == 2);
  CHECK(QueryInt(path, "SELECT segment_offset FROM bundles WHERE seq = 3") ==
        static_cast<std::int64_t>(large.bytes.size() + 16));
  auto store = OpenStore(path);
  CHECK(store->damaged().empty());
  for (const TestBundle* t : {&small, &large, &exact}) {
    const StoredBundleInfo* info = store->Find(t->info.id);
    REQUIRE(info != nullptr);
    CHECK(info->size_bytes == t->bytes.size());
    CHECK(store->ReadBytes(t->info.id).value() == t->bytes);
  }
  CHECK(store->usage().bytes == small.bytes.size() + large.bytes.size() + exact.bytes.size());
  // A reopened store appends to a new segment, never to one of an earlier run.
  TestBundle next = Large(4);
  REQUIRE(store->Put(next.info, next.bytes).value() == PutStatus::kStored);
  REQUIRE(store->Commit());
  CHECK(SegmentNames(path + ".segments") == std::vector<std::string>{"00000001.seg", "00000002.seg"});
  CHECK(store->ReadBytes(next.info.id).value() == next.bytes);
}

TEST_CASE(
    "segment store: records written but not committed (a crash) are ignored, and a segment without rows is "
    "removed") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  const std::string segments = path + ".segments";
  TestBundle a = Large(1);
  TestBundle b = Large(2);
  TestBundle c = Large(3);
  SUBCASE("garbage after the last committed record") {
    // 40 KB: written to the file when staged (smaller records wait in memory until the commit).
    b = Large(2, 40'000);
    {
      auto store = OpenStore(path, 200'000);
      REQUIRE(store->Put(a.info, a.bytes).value() == PutStatus::kStored);
      REQUIRE(store->Commit());
      REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);  // written, never committed
    }
    CHECK(std::filesystem::file_size(segments + "/00000001.seg") == a.bytes.size() + b.bytes.size() + 32);
    auto store = OpenStore(path);
    CHECK(store->damaged().empty());
    CHECK(store->ReadBytes(a.info.id).value() == a.bytes);
    CHECK(store->Find(b.info.id) == nullptr);
    CHECK_FALSE(store->Seen(b.info.id));
    // b arrives again (its sender was never acknowledged) and is stored in a new segment.
    REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Commit());
    CHECK(store->ReadBytes(b.info.id).value() == b.bytes);
    CHECK(SegmentNames(segments) == std::vector<std::string>{"00000001.seg", "00000002.seg"});
  }
  SUBCASE("a segment created and written, then the process died before the commit") {
    {
      auto store = OpenStore(path);
      REQUIRE(store->Put(a.info, a.bytes).value() == PutStatus::kStored);
      REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
      REQUIRE(store->Commit());
      REQUIRE(store->Put(c.info, c.bytes).value() == PutStatus::kStored);  // rolls to segment 2
    }
    CHECK(SegmentNames(segments) == std::vector<std::string>{"00000001.seg", "00000002.seg"});
    auto store = OpenStore(path);
    CHECK(SegmentNames(segments) == std::vector<std::string>{"00000001.seg"});  // the orphan is gone
    CHECK(store->segment_files() == 1);
    CHECK(store->ReadBytes(a.info.id).value() == a.bytes);
    CHECK(store->ReadBytes(b.info.id).value() == b.bytes);
    CHECK(store->Find(c.info.id) == nullptr);
  }
  SUBCASE("a remove staged but not committed keeps the segment and the row") {
    {
      auto store = OpenStore(path);
      REQUIRE(store->Put(a.info, a.bytes).value() == PutStatus::kStored);
      REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
      REQUIRE(store->Put(c.info, c.bytes).value() == PutStatus::kStored);  // segment 2 is current
      REQUIRE(store->Commit());
      REQUIRE(store->Remove(a.info.id).value());
      REQUIRE(store->Remove(b.info.id).value());  // segment 1 has no row left, in memory
      CHECK(SegmentNames(segments).size() == 2);
    }
    CHECK(SegmentNames(segments).size() == 2);
    auto store = OpenStore(path);
    CHECK(store->ReadBytes(a.info.id).value() == a.bytes);
    CHECK(store->ReadBytes(b.info.id).value() == b.bytes);
  }
}

TEST_CASE(
    "segment store: a segment is unlinked after the commit that removes its last row, never while current") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  const std::string segments = path + ".segments";
  std::vector<TestBundle> bundles;
  for (std::uint64_t i = 1; i <= 5; ++i) bundles.push_back(Large(i));
  auto store = OpenStore(path, 50'000, /*spare_segments=*/0);
  for (TestBundle& t : bundles) REQUIRE(store->Put(t.info, t.bytes).value() == PutStatus::kStored);
  REQUIRE(store->Commit());
  // Two records per segment: 1 = {1, 2}, 2 = {3, 4}, 3 = {5} (current).
  CHECK(SegmentNames(segments) == std::vector<std::string>{"00000001.seg", "00000002.seg", "00000003.seg"});
  REQUIRE(store->Remove(bundles[0].info.id).value());
  REQUIRE(store->Commit());
  CHECK(SegmentNames(segments).size() == 3);  // bundle 2 still points into segment 1
  REQUIRE(store->Remove(bundles[1].info.id).value());
  CHECK(SegmentNames(segments).size() == 3);  // not before the commit
  REQUIRE(store->Commit());
  CHECK(SegmentNames(segments) == std::vector<std::string>{"00000002.seg", "00000003.seg"});
  REQUIRE(store->Remove(bundles[4].info.id).value());
  REQUIRE(store->Commit());
  CHECK(SegmentNames(segments).size() == 2);  // segment 3 is empty but still being appended
  TestBundle six = Large(6);
  TestBundle seven = Large(7);
  REQUIRE(store->Put(six.info, six.bytes).value() == PutStatus::kStored);      // into segment 3
  REQUIRE(store->Put(seven.info, seven.bytes).value() == PutStatus::kStored);  // 3 is full: segment 4
  REQUIRE(store->Remove(six.info.id).value());
  REQUIRE(store->Commit());
  // Segment 3 lost its last row and is no longer current: gone; 4 stays.
  CHECK(SegmentNames(segments) == std::vector<std::string>{"00000002.seg", "00000004.seg"});
  CHECK(store->ReadBytes(bundles[2].info.id).value() == bundles[2].bytes);
  CHECK(store->ReadBytes(seven.info.id).value() == seven.bytes);
  store.reset();
  store = OpenStore(path);
  CHECK(store->usage().bundles == 3);
  CHECK(store->ReadBytes(bundles[3].info.id).value() == bundles[3].bytes);
  CHECK(store->ReadBytes(seven.info.id).value() == seven.bytes);
}

TEST_CASE(
    "segment store: a reclaimed segment is kept as a spare and reused under the next number; its old records "
    "are never read") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  const std::string segments = path + ".segments";
  // 30 KiB bundles: one record per 50,000-byte segment, so each new bundle starts a segment.
  auto big = [](std::uint64_t seq) { return Large(seq, 30'000); };
  TestBundle a = big(1), b = big(2), c = big(3), d = big(4), e = big(5);
  auto store = OpenStore(path, 50'000, /*spare_segments=*/1);
  for (TestBundle* t : {&a, &b, &c}) REQUIRE(store->Put(t->info, t->bytes).value() == PutStatus::kStored);
  REQUIRE(store->Commit());
  CHECK(SegmentNames(segments) == std::vector<std::string>{"00000001.seg", "00000002.seg", "00000003.seg"});
  REQUIRE(store->Remove(a.info.id).value());
  REQUIRE(store->Remove(b.info.id).value());
  REQUIRE(store->Commit());
  // Segment 1 is the one spare kept (still on disk, no row into it); segment 2 is unlinked.
  CHECK(SegmentNames(segments) == std::vector<std::string>{"00000001.seg", "00000003.seg"});
  const auto spare_size = std::filesystem::file_size(segments + "/00000001.seg");
  // The next segment is the spare renamed, overwritten from its start.
  REQUIRE(store->Put(d.info, d.bytes).value() == PutStatus::kStored);
  CHECK(SegmentNames(segments) == std::vector<std::string>{"00000003.seg", "00000004.seg"});
  CHECK(std::filesystem::file_size(segments + "/00000004.seg") == spare_size);
  REQUIRE(store->Commit());
  CHECK(store->ReadBytes(d.info.id).value() == d.bytes);
  // A smaller record over the spare's larger one: the bytes past it are the old record's tail.
  TestBundle small = Large(6, 25'000);
  REQUIRE(store->Remove(c.info.id).value());
  REQUIRE(store->Commit());  // segment 3 becomes the spare
  REQUIRE(store->Put(small.info, small.bytes).value() == PutStatus::kStored);  // 4 is full: into 5 (was 3)
  REQUIRE(store->Put(e.info, e.bytes).value() == PutStatus::kStored);          // 5 is full: a new 6
  REQUIRE(store->Commit());
  CHECK(SegmentNames(segments) == std::vector<std::string>{"00000004.seg", "00000005.seg", "00000006.seg"});
  CHECK(store->ReadBytes(small.info.id).value() == small.bytes);
  store.reset();
  // After a restart the rows are the truth: every stored bundle reads back; nothing is damaged.
  store = OpenStore(path);
  CHECK(store->damaged().empty());
  CHECK(store->usage().bundles == 3);
  for (TestBundle* t : {&d, &small, &e}) CHECK(store->ReadBytes(t->info.id).value() == t->bytes);
  CHECK(store->Find(a.info.id) == nullptr);
}

TEST_CASE("segment store: a segment larger than the roll size (one big record) is unlinked, not kept as a spare") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  const std::string segments = path + ".segments";
  TestBundle huge = Large(1, 60'000), next = Large(2, 30'000);
  auto store = OpenStore(path, 50'000, 2);
  REQUIRE(store->Put(huge.info, huge.bytes).value() == PutStatus::kStored);  // segment 1, alone
  REQUIRE(store->Put(next.info, next.bytes).value() == PutStatus::kStored);  // segment 2
  REQUIRE(store->Commit());
  REQUIRE(store->Remove(huge.info.id).value());
  REQUIRE(store->Commit());
  CHECK(SegmentNames(segments) == std::vector<std::string>{"00000002.seg"});
}

TEST_CASE("segment store: a spare left at a restart is removed; a record of a segment's earlier life is refused") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  const std::string segments = path + ".segments";
  TestBundle a = Large(1, 30'000), b = Large(2, 30'000), c = Large(3, 30'000);
  {
    auto store = OpenStore(path, 50'000, 1);
    for (TestBundle* t : {&a, &b}) REQUIRE(store->Put(t->info, t->bytes).value() == PutStatus::kStored);
    REQUIRE(store->Commit());
    REQUIRE(store->Remove(a.info.id).value());
    REQUIRE(store->Commit());
    CHECK(SegmentNames(segments) == std::vector<std::string>{"00000001.seg", "00000002.seg"});  // 1: spare
  }
  {
    auto store = OpenStore(path, 50'000, 1);
    CHECK(SegmentNames(segments) == std::vector<std::string>{"00000002.seg"});  // no row into 1: removed
    REQUIRE(store->Put(c.info, c.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Commit());
    CHECK(store->ReadBytes(b.info.id).value() == b.bytes);
  }
  // A segment whose start is overwritten by an older record (as a spare's earlier life would leave
  // it, were a row ever to point there): the read names the sequence number it found.
  const std::string file = segments + "/00000002.seg";
  const std::string copy = dir.File("segment-copy");
  std::filesystem::copy_file(segments + "/00000003.seg", copy);  // c's record: seq 3, not 2
  std::filesystem::remove(file);
  std::filesystem::copy_file(copy, file);
  auto store = OpenStore(path, 50'000, 1);
  auto read = store->ReadBytes(b.info.id);
  REQUIRE_FALSE(read.has_value());
  CHECK(read.error().kind == storage::Error::Kind::kDamagedRecord);
  CHECK(read.error().message.find("00000002.seg") != std::string::npos);
  CHECK(store->ReadBytes(c.info.id).value() == c.bytes);
}

TEST_CASE(
    "segment store: a damaged record is an error naming the file and the offset; other bundles are served") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  const std::string seg1 = path + ".segments/00000001.seg";
  TestBundle a = Large(1);
  TestBundle b = Large(2);
  TestBundle c = Large(3);
  TestBundle small = MakeTestBundle(1, 1000, 4, kDest, Priority::kNormal, 90'000);
  {
    auto store = OpenStore(path);
    for (TestBundle* t : {&a, &b, &c, &small})
      REQUIRE(store->Put(t->info, t->bytes).value() == PutStatus::kStored);
    REQUIRE(store->Commit());
  }
  const std::string b_offset = std::to_string(a.bytes.size() + 16);
  SUBCASE("a byte changed inside a bundle") {
    {
      std::fstream f(seg1, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(static_cast<std::streamoff>(a.bytes.size() + 16 + 16 + 1000));
      f.put('\x5a');
    }
    auto store = OpenStore(path);
    CHECK(store->damaged().empty());  // Open() checks sizes only; the CRC is checked at read
    auto read = store->ReadBytes(b.info.id);
    REQUIRE_FALSE(read.has_value());
    CHECK(read.error().kind == storage::Error::Kind::kDamagedRecord);
    CHECK(read.error().message.find(seg1 + ": offset " + b_offset) == 0);
    CHECK(read.error().message.find("CRC-32C mismatch") != std::string::npos);
    CHECK(store->ReadBytes(a.info.id).value() == a.bytes);
    CHECK(store->ReadBytes(c.info.id).value() == c.bytes);
  }
  SUBCASE("a record header overwritten") {
    {
      std::fstream f(seg1, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(0);
      f.write("XXXX", 4);
    }
    auto store = OpenStore(path);
    auto read = store->ReadBytes(a.info.id);
    REQUIRE_FALSE(read.has_value());
    CHECK(read.error().message.find(seg1 + ": offset 0: bundle " + a.info.id.ToString()) == 0);
    CHECK(read.error().message.find("no record header") != std::string::npos);
    CHECK(store->ReadBytes(b.info.id).value() == b.bytes);
  }
  SUBCASE("a segment cut short") {
    std::filesystem::resize_file(seg1, a.bytes.size() + 16 + 100);
    auto store = OpenStore(path);
    REQUIRE(store->damaged().size() == 1);
    CHECK(store->damaged()[0].find(seg1 + ": offset " + b_offset + ": bundle " + b.info.id.ToString()) == 0);
    CHECK(store->damaged()[0].find("segment too short") != std::string::npos);
    CHECK(store->Find(b.info.id) != nullptr);  // kept: the operator decides
    auto read = store->ReadBytes(b.info.id);
    REQUIRE_FALSE(read.has_value());
    CHECK(read.error().kind == storage::Error::Kind::kDamagedRecord);
    CHECK(read.error().message.find(seg1 + ": offset " + b_offset) == 0);
    CHECK(store->ReadBytes(a.info.id).value() == a.bytes);
    CHECK(store->ReadBytes(c.info.id).value() == c.bytes);
    CHECK(store->ReadBytes(small.info.id).value() == small.bytes);
    // Removing the damaged bundle clears the report.
    REQUIRE(store->Remove(b.info.id).value());
    REQUIRE(store->Commit());
  }
  SUBCASE("a segment missing") {
    std::filesystem::remove(seg1);
    auto store = OpenStore(path);
    REQUIRE(store->damaged().size() == 2);
    CHECK(store->damaged()[0].find(seg1 + ": offset 0: bundle " + a.info.id.ToString()) == 0);
    CHECK(store->damaged()[0].find("segment missing") != std::string::npos);
    CHECK(store->damaged()[1].find(seg1 + ": offset " + b_offset) == 0);
    CHECK_FALSE(store->ReadBytes(a.info.id).has_value());
    CHECK(store->ReadBytes(c.info.id).value() == c.bytes);
    // New records never reuse the missing segment's number.
    TestBundle d = Large(5);
    REQUIRE(store->Put(d.info, d.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Commit());
    CHECK(SegmentNames(path + ".segments") == std::vector<std::string>{"00000002.seg", "00000003.seg"});
  }
  SUBCASE("the whole segment directory missing: Open refuses and changes nothing") {
    std::filesystem::rename(path + ".segments", dir.File("aside"));
    auto refused = SqliteBundleStore::Open(path);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().kind == storage::Error::Kind::kCorrupt);
    CHECK(refused.error().message.find(path + ".segments: missing, but 3 stored bundles") == 0);
    std::filesystem::rename(dir.File("aside"), path + ".segments");
    auto store = OpenStore(path);
    CHECK(store->damaged().empty());
    CHECK(store->ReadBytes(b.info.id).value() == b.bytes);
    CHECK(store->ReadBytes(small.info.id).value() == small.bytes);
  }
}

TEST_CASE("segment store: a version 1 store (every bundle in its row) is migrated and keeps its rows") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  TestBundle old_large = Large(1);
  {
    // The version 1 schema, as a store of the previous release wrote it.
    auto db = storage::Database::Open(path).value();
    REQUIRE(db.Exec(
        "PRAGMA application_id = 1229148994;"  // 0x49435342
        "CREATE TABLE bundles(seq INTEGER PRIMARY KEY, source TEXT NOT NULL, created_ms INTEGER NOT NULL,"
        " created_seq INTEGER NOT NULL, fragment_offset INTEGER, fragment_length INTEGER,"
        " destination TEXT NOT NULL, priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2),"
        " disposition INTEGER NOT NULL CHECK (disposition BETWEEN 0 AND 1), received_ms INTEGER NOT NULL,"
        " expires_ms INTEGER NOT NULL, delivered_once INTEGER NOT NULL DEFAULT 0, bytes BLOB NOT NULL);"
        "CREATE TABLE seen(id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
        "CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
        "PRAGMA user_version = 1;"));
    auto insert = db.Prepare(
        "INSERT INTO bundles(seq, source, created_ms, created_seq, destination, priority, disposition,"
        " received_ms, expires_ms, bytes) VALUES (7, 'ipn:1.1', 1000, 1, 'ipn:3.1', 1, 0, 1000, 90000, ?1)");
    REQUIRE(insert);
    REQUIRE(insert->Bind(1, std::span<const std::uint8_t>(old_large.bytes)).Run());
    REQUIRE(db.Exec("INSERT INTO seen VALUES ('ipn:1.1/1000.1', 90000), ('ipn:1.1/1000.9', 5000)"));
  }
  auto store = OpenStore(path);
  const StoredBundleInfo* info = store->Find(old_large.info.id);
  REQUIRE(info != nullptr);
  CHECK(info->store_seq == 7);
  CHECK(info->size_bytes == old_large.bytes.size());
  CHECK(store->ReadBytes(old_large.info.id).value() == old_large.bytes);  // still in its row
  TestBundle fresh = Large(2);
  REQUIRE(store->Put(fresh.info, fresh.bytes).value() == PutStatus::kStored);
  CHECK(fresh.info.store_seq == 8);
  // A seen row of the old table is forgotten by its new key.
  BundleId gone = ParseBundleIdText("ipn:1.1/1000.9").value();
  CHECK(store->Seen(gone));
  CHECK(store->ForgetSeenBefore(clock::DtnTime::FromMillis(10'000)).value() == 1);
  REQUIRE(store->Commit());
  CHECK(store->segment_files() == 1);
  REQUIRE(store->Remove(old_large.info.id).value());
  REQUIRE(store->Commit());
  store.reset();
  CHECK(QueryInt(path, "PRAGMA user_version") >= 2);
  store = OpenStore(path);
  CHECK(store->Find(old_large.info.id) == nullptr);
  CHECK(store->Seen(old_large.info.id));
  CHECK_FALSE(store->Seen(gone));
  CHECK(store->usage().seen_ids == 2);
  CHECK(store->ReadBytes(fresh.info.id).value() == fresh.bytes);
}

TEST_CASE("segment store: threshold 0 keeps every bundle in SQLite and creates no segment directory") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  SqliteBundleStoreOptions options;
  options.segment_threshold_bytes = 0;
  TestBundle large = Large(1, 100'000);
  {
    auto store = SqliteBundleStore::Open(path, options).value();
    REQUIRE(store->Put(large.info, large.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Commit());
    CHECK(store->ReadBytes(large.info.id).value() == large.bytes);
  }
  CHECK_FALSE(std::filesystem::exists(path + ".segments"));
  // Reopened with segments on, the row is still read from SQLite.
  auto store = OpenStore(path);
  CHECK(store->ReadBytes(large.info.id).value() == large.bytes);
}

TEST_CASE(
    "segment store: a second opener is refused (kBusy) and leaves the owner's uncommitted segment alone") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  TestBundle a = Large(1);
  auto owner = OpenStore(path);
  REQUIRE(owner->Put(a.info, a.bytes).value() == PutStatus::kStored);  // segment 1, no row committed
  SqliteBundleStoreOptions options;
  auto second = SqliteBundleStore::Open(path, options);  // waits out SQLite's busy timeout (5 s)
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().kind == storage::Error::Kind::kBusy);
  CHECK(std::filesystem::exists(path + ".segments/00000001.seg"));
  REQUIRE(owner->Commit());
  owner.reset();
  auto store = OpenStore(path);
  CHECK(store->ReadBytes(a.info.id).value() == a.bytes);
}

}  // namespace
}  // namespace ics::dtn
