// Goal: both bundle stores (in-memory and SQLite) keep the BundleStore contract: put/get/remove,
// the indexed queries in priority-then-age and expiry order, seen IDs until expiry, quota refusal
// without eviction; and the SQLite one restores all of it from its file and makes exactly the
// committed writes durable. Method: one shared test body per behaviour, instantiated for each
// implementation (TEST_CASE_TEMPLATE: in memory, SQLite, and SQLite with every bundle in segment
// files), with real SQLite files in a mkdtemp directory. (segment_store_test.cpp: the segments.)
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bundle_store_test_util.h"
#include "dtn/bundle_store.h"
#include "dtn/sqlite_bundle_store.h"
#include "storage/database.h"

namespace ics::dtn {
namespace {

using test::MakeTestBundle;
using test::TestBundle;

struct MemoryFixture {
  std::unique_ptr<BundleStore> Open(StoreLimits limits = {}) { return std::make_unique<MemoryBundleStore>(limits); }
};

struct SqliteFixture {
  test::TempDir dir;
  std::unique_ptr<BundleStore> Open(StoreLimits limits = {}) {
    SqliteBundleStoreOptions options;
    options.limits = limits;
    auto store = SqliteBundleStore::Open(dir.File("bundles.db"), options);
    REQUIRE_MESSAGE(store.has_value(), (store ? "" : store.error().message));
    return std::move(*store);
  }
};

// Every bundle in a segment file (threshold 1 byte), segments rolling every few bundles.
struct SegmentFixture {
  test::TempDir dir;
  std::unique_ptr<BundleStore> Open(StoreLimits limits = {}) {
    SqliteBundleStoreOptions options;
    options.limits = limits;
    options.segment_threshold_bytes = 1;
    options.segment_roll_bytes = 256;
    auto store = SqliteBundleStore::Open(dir.File("bundles.db"), options);
    REQUIRE_MESSAGE(store.has_value(), (store ? "" : store.error().message));
    return std::move(*store);
  }
};

std::vector<std::uint64_t> QueueSeqs(const BundleStore& store, const Eid& node) {
  std::vector<std::uint64_t> out;
  store.VisitQueue(node, [&](const StoredBundleInfo& info) {
    out.push_back(info.id.created.sequence);
    return true;
  });
  return out;
}

const Eid kDest3 = Eid::Ipn(3, 1);
const Eid kDest4 = Eid::Ipn(4, 7);

TEST_CASE_TEMPLATE("bundle store: put, read and remove; the ID stays seen", F, MemoryFixture, SqliteFixture,
                   SegmentFixture) {
  F f;
  auto store = f.Open();
  TestBundle b = MakeTestBundle(1, 1000, 1, kDest3, Priority::kNormal, 60'000);
  REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
  CHECK(b.info.store_seq == 1);
  CHECK(store->staged() == 1);
  const StoredBundleInfo* found = store->Find(b.info.id);
  REQUIRE(found != nullptr);
  CHECK(found->destination == kDest3);
  CHECK(found->size_bytes == b.bytes.size());
  CHECK(store->ReadBytes(b.info.id).value() == b.bytes);  // staged, not yet committed
  CHECK(store->Commit().value() == 1);
  CHECK(store->staged() == 0);
  CHECK(store->ReadBytes(b.info.id).value() == b.bytes);  // committed
  CHECK(store->usage().bundles == 1);
  CHECK(store->usage().bytes == b.bytes.size());

  CHECK(store->Put(b.info, b.bytes).value() == PutStatus::kDuplicate);
  CHECK(store->Remove(b.info.id).value());
  CHECK_FALSE(store->Remove(b.info.id).value());
  CHECK(store->Find(b.info.id) == nullptr);
  CHECK(store->Seen(b.info.id));
  CHECK(store->Put(b.info, b.bytes).value() == PutStatus::kDuplicate);  // delivered/forwarded IDs stay seen
  CHECK(store->usage().bundles == 0);
  CHECK(store->usage().bytes == 0);
  CHECK(store->Commit().value() == 1);
}

TEST_CASE_TEMPLATE("bundle store: queues are in priority then age order, per destination node", F,
                   MemoryFixture, SqliteFixture, SegmentFixture) {
  F f;
  auto store = f.Open();
  // Sequence numbers name the bundles; stored in this order.
  const std::vector<std::pair<std::uint64_t, Priority>> order = {
      {1, Priority::kBulk}, {2, Priority::kNormal}, {3, Priority::kBulk}, {4, Priority::kExpedited},
      {5, Priority::kNormal}, {6, Priority::kExpedited}};
  for (auto [seq, priority] : order) {
    TestBundle b = MakeTestBundle(1, 1000, seq, Eid::Ipn(3, seq), priority, 60'000);  // services differ
    REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
  }
  TestBundle other = MakeTestBundle(1, 1000, 7, kDest4, Priority::kExpedited, 60'000);
  REQUIRE(store->Put(other.info, other.bytes).value() == PutStatus::kStored);
  TestBundle local = MakeTestBundle(1, 1000, 8, Eid::Ipn(3, 1), Priority::kExpedited, 60'000,
                                    BundleDisposition::kDeliver);
  REQUIRE(store->Put(local.info, local.bytes).value() == PutStatus::kStored);

  CHECK(QueueSeqs(*store, Eid::Ipn(3, 0)) == std::vector<std::uint64_t>{4, 6, 2, 5, 1, 3});
  CHECK(QueueSeqs(*store, Eid::Ipn(4, 0)) == std::vector<std::uint64_t>{7});
  CHECK(QueueSeqs(*store, Eid::Ipn(5, 0)).empty());
  CHECK(store->QueuedDestinations() == std::vector<Eid>{Eid::Ipn(3, 0), Eid::Ipn(4, 0)});
  std::vector<std::uint64_t> first_two;
  store->VisitQueue(Eid::Ipn(3, 0), [&](const StoredBundleInfo& info) {
    first_two.push_back(info.id.created.sequence);
    return first_two.size() < 2;
  });
  CHECK(first_two == std::vector<std::uint64_t>{4, 6});

  std::vector<std::uint64_t> deliveries;
  store->VisitDeliveries(Eid::Ipn(3, 1), [&](const StoredBundleInfo& info) {
    deliveries.push_back(info.id.created.sequence);
    return true;
  });
  CHECK(deliveries == std::vector<std::uint64_t>{8});
  REQUIRE(store->Commit());
}

TEST_CASE_TEMPLATE("bundle store: expiry queries and seen IDs forgotten after expiry", F, MemoryFixture,
                   SqliteFixture, SegmentFixture) {
  F f;
  auto store = f.Open();
  TestBundle a = MakeTestBundle(1, 1000, 1, kDest3, Priority::kNormal, 30'000);
  TestBundle b = MakeTestBundle(1, 1000, 2, kDest3, Priority::kNormal, 10'000);
  TestBundle c = MakeTestBundle(1, 1000, 3, kDest3, Priority::kNormal, 20'000);
  for (TestBundle* t : {&a, &b, &c}) REQUIRE(store->Put(t->info, t->bytes).value() == PutStatus::kStored);
  CHECK(store->EarliestExpiry() == clock::DtnTime::FromMillis(10'000));
  auto expiring = store->ExpiringBefore(clock::DtnTime::FromMillis(30'000), 10);
  REQUIRE(expiring.size() == 2);
  CHECK(expiring[0].id == b.info.id);
  CHECK(expiring[1].id == c.info.id);
  CHECK(store->ExpiringBefore(clock::DtnTime::FromMillis(30'001), 1).size() == 1);
  CHECK(store->ExpiringBefore(clock::DtnTime::FromMillis(10'000), 10).empty());

  REQUIRE(store->Remove(b.info.id).value());
  CHECK(store->EarliestExpiry() == clock::DtnTime::FromMillis(20'000));
  // b left the store but is remembered until its expiry; a and c are still stored.
  CHECK(store->ForgetSeenBefore(clock::DtnTime::FromMillis(10'000)).value() == 0);
  CHECK(store->Seen(b.info.id));
  CHECK(store->ForgetSeenBefore(clock::DtnTime::FromMillis(25'000)).value() == 1);
  CHECK_FALSE(store->Seen(b.info.id));
  CHECK(store->Seen(c.info.id));  // still stored: never forgotten while stored
  CHECK(store->usage().seen_ids == 2);
  CHECK(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
  REQUIRE(store->Commit());
}

TEST_CASE_TEMPLATE("bundle store: quota refuses new bundles and never evicts", F, MemoryFixture,
                   SqliteFixture, SegmentFixture) {
  F f;
  TestBundle a = MakeTestBundle(1, 1000, 1, kDest3, Priority::kBulk, 60'000);
  TestBundle b = MakeTestBundle(1, 1000, 2, kDest3, Priority::kBulk, 60'000);
  TestBundle c = MakeTestBundle(1, 1000, 3, kDest3, Priority::kExpedited, 60'000);
  SUBCASE("by count") {
    auto store = f.Open(StoreLimits{2, 1 << 20});
    REQUIRE(store->Put(a.info, a.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
    CHECK(store->Put(c.info, c.bytes).value() == PutStatus::kQuotaBundles);  // even expedited
    CHECK(store->Find(a.info.id) != nullptr);
    CHECK(store->Find(b.info.id) != nullptr);
    CHECK_FALSE(store->Seen(c.info.id));  // a refused bundle may come back later
    REQUIRE(store->Remove(a.info.id).value());
    CHECK(store->Put(c.info, c.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Commit());
  }
  SUBCASE("by bytes") {
    auto store = f.Open(StoreLimits{100, a.bytes.size() + b.bytes.size() + 1});
    REQUIRE(store->Put(a.info, a.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
    CHECK(store->Put(c.info, c.bytes).value() == PutStatus::kQuotaBytes);
    CHECK(store->usage().bundles == 2);
    REQUIRE(store->Commit());
  }
}

TEST_CASE_TEMPLATE("bundle store: counters and delivered marks", F, MemoryFixture, SqliteFixture,
                   SegmentFixture) {
  F f;
  auto store = f.Open();
  CHECK_FALSE(store->Counter("x").has_value());
  REQUIRE(store->SetCounter("x", 41));
  REQUIRE(store->SetCounter("x", 42));
  CHECK(store->Counter("x") == 42u);
  TestBundle d = MakeTestBundle(1, 1000, 1, Eid::Ipn(2, 1), Priority::kNormal, 60'000, BundleDisposition::kDeliver);
  REQUIRE(store->Put(d.info, d.bytes).value() == PutStatus::kStored);
  CHECK_FALSE(store->Find(d.info.id)->delivered_once);
  CHECK(store->MarkDelivered(d.info.id).value());
  CHECK(store->Find(d.info.id)->delivered_once);
  CHECK(store->Commit().value() == 4);
}

TEST_CASE_TEMPLATE("bundle store: a bundle marked in flight leaves its queue until released", F,
                   MemoryFixture, SqliteFixture, SegmentFixture) {
  F f;
  auto store = f.Open();
  TestBundle a = MakeTestBundle(1, 1000, 1, kDest3, Priority::kNormal, 60'000);
  TestBundle b = MakeTestBundle(1, 1000, 2, kDest3, Priority::kNormal, 60'000);
  TestBundle local = MakeTestBundle(1, 1000, 3, Eid::Ipn(2, 1), Priority::kNormal, 60'000, BundleDisposition::kDeliver);
  for (TestBundle* t : {&a, &b, &local}) REQUIRE(store->Put(t->info, t->bytes).value() == PutStatus::kStored);
  CHECK(store->SetInFlight(a.info.id, true));
  CHECK(QueueSeqs(*store, Eid::Ipn(3, 0)) == std::vector<std::uint64_t>{2});
  CHECK(store->SetInFlight(b.info.id, true));
  CHECK(QueueSeqs(*store, Eid::Ipn(3, 0)).empty());
  CHECK(store->QueuedDestinations().empty());
  CHECK(store->Find(a.info.id) != nullptr);  // still stored
  CHECK(store->SetInFlight(a.info.id, false));
  CHECK(QueueSeqs(*store, Eid::Ipn(3, 0)) == std::vector<std::uint64_t>{1});
  // Removing a bundle in flight leaves no queue entry behind; a local bundle has no queue.
  REQUIRE(store->Remove(b.info.id).value());
  CHECK_FALSE(store->SetInFlight(b.info.id, false));
  CHECK_FALSE(store->SetInFlight(local.info.id, true));
  CHECK(QueueSeqs(*store, Eid::Ipn(3, 0)) == std::vector<std::uint64_t>{1});
  CHECK(store->staged() == 4);  // three puts and a remove: marking is not a write
}

TEST_CASE("bundle store: bundle ID text parses back to the same ID, fragments and dtn: sources included") {
  BundleId plain;
  plain.source = Eid::Ipn(2, 1);
  plain.created = {clock::DtnTime::FromMillis(815000000123), 4};
  BundleId fragment = plain;
  fragment.fragment_offset = 100;
  fragment.fragment_length = 20;
  BundleId named;
  named.source = Eid::Parse("dtn://rover/lease").value();
  named.created = {clock::DtnTime::FromMillis(7), 0};
  for (const BundleId& id : {plain, fragment, named}) {
    auto parsed = ParseBundleIdText(id.ToString());
    REQUIRE_MESSAGE(parsed, (parsed ? "" : parsed.error()));
    CHECK(*parsed == id);
    CHECK(BundleIdHash{}(*parsed) == BundleIdHash{}(id));
  }
  CHECK(plain.ToString() == "ipn:2.1/815000000123.4");
  CHECK(fragment.ToString() == "ipn:2.1/815000000123.4#100+20");
  for (const char* bad : {"", "ipn:2.1", "ipn:2.1/", "ipn:2.1/5", "ipn:2.1/5.", "ipn:2.1/x.1", "ipn:2.1/5.1#3",
                          "ipn:2.1/5.1#3+", "ipn:2.1/5.1#+3", "nope/5.1"}) {
    auto parsed = ParseBundleIdText(bad);
    CHECK_FALSE(parsed);
    if (!parsed) CHECK(parsed.error().find("bundle id '") == 0);
  }
}

// SQLite store options: bundles in their rows, or every bundle in a segment file.
SqliteBundleStoreOptions StoreOptions(bool segments) {
  SqliteBundleStoreOptions options;
  options.segment_threshold_bytes = segments ? 1 : 0;
  options.segment_roll_bytes = 256;
  return options;
}

TEST_CASE("bundle store (SQLite): reopening restores bundles, order, seen IDs, counters and marks") {
  bool segments = false;
  SUBCASE("bundles in their rows") {}
  SUBCASE("bundles in segment files") { segments = true; }
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  TestBundle removed = MakeTestBundle(1, 1000, 1, kDest3, Priority::kNormal, 90'000);
  TestBundle bulk = MakeTestBundle(1, 1000, 2, kDest3, Priority::kBulk, 90'000);
  TestBundle expedited = MakeTestBundle(1, 1000, 3, kDest3, Priority::kExpedited, 80'000);
  TestBundle local = MakeTestBundle(1, 1000, 4, Eid::Ipn(2, 1), Priority::kNormal, 70'000, BundleDisposition::kDeliver);
  {
    auto store = SqliteBundleStore::Open(path, StoreOptions(segments)).value();
    for (TestBundle* t : {&removed, &bulk, &expedited, &local}) {
      REQUIRE(store->Put(t->info, t->bytes).value() == PutStatus::kStored);
    }
    REQUIRE(store->Remove(removed.info.id).value());
    REQUIRE(store->MarkDelivered(local.info.id).value());
    REQUIRE(store->SetCounter("creation_sequence", 17));
    CHECK(store->Commit().value() == 7);
    CHECK(store->commits() == 1);  // group commit: one transaction for all seven writes
  }
  auto store = SqliteBundleStore::Open(path, StoreOptions(segments)).value();
  CHECK(store->usage().bundles == 3);
  CHECK(store->usage().bytes == bulk.bytes.size() + expedited.bytes.size() + local.bytes.size());
  CHECK(store->Seen(removed.info.id));
  CHECK(store->Find(removed.info.id) == nullptr);
  CHECK(QueueSeqs(*store, Eid::Ipn(3, 0)) == std::vector<std::uint64_t>{3, 2});
  const StoredBundleInfo* l = store->Find(local.info.id);
  REQUIRE(l != nullptr);
  CHECK(l->delivered_once);
  CHECK(l->disposition == BundleDisposition::kDeliver);
  CHECK(l->received_at == local.info.received_at);
  CHECK(l->expires_at == local.info.expires_at);
  CHECK(store->ReadBytes(expedited.info.id).value() == expedited.bytes);
  CHECK(store->Counter("creation_sequence") == 17u);
  CHECK(store->EarliestExpiry() == clock::DtnTime::FromMillis(70'000));
  // New bundles continue the store order after a restart.
  TestBundle next = MakeTestBundle(1, 1000, 5, kDest3, Priority::kBulk, 90'000);
  REQUIRE(store->Put(next.info, next.bytes).value() == PutStatus::kStored);
  CHECK(next.info.store_seq == 5);
  CHECK(QueueSeqs(*store, Eid::Ipn(3, 0)) == std::vector<std::uint64_t>{3, 2, 5});
}

TEST_CASE("bundle store (SQLite): only committed writes survive (group commit)") {
  bool segments = false;
  SUBCASE("bundles in their rows") {}
  SUBCASE("bundles in segment files") { segments = true; }
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  TestBundle a = MakeTestBundle(1, 1000, 1, kDest3, Priority::kNormal, 90'000);
  TestBundle b = MakeTestBundle(1, 1000, 2, kDest3, Priority::kNormal, 90'000);
  {
    auto store = SqliteBundleStore::Open(path, StoreOptions(segments)).value();
    REQUIRE(store->Put(a.info, a.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Commit());
    REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Remove(a.info.id).value());
    // Destroyed with two writes staged: as if the process died before Commit.
  }
  auto store = SqliteBundleStore::Open(path, StoreOptions(segments)).value();
  CHECK(store->Find(a.info.id) != nullptr);
  CHECK(store->Find(b.info.id) == nullptr);
  CHECK_FALSE(store->Seen(b.info.id));
}

TEST_CASE(
    "bundle store (SQLite): store sequence numbers never repeat across restarts, even once the store is "
    "empty") {
  test::TempDir dir;
  const std::string path = dir.File("bundles.db");
  TestBundle a = MakeTestBundle(1, 1000, 1, kDest3, Priority::kNormal, 90'000);
  TestBundle b = MakeTestBundle(1, 1000, 2, kDest3, Priority::kNormal, 90'000);
  TestBundle c = MakeTestBundle(1, 1000, 3, kDest3, Priority::kNormal, 90'000);
  {
    auto store = SqliteBundleStore::Open(path).value();
    REQUIRE(store->Put(a.info, a.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Put(b.info, b.bytes).value() == PutStatus::kStored);
    REQUIRE(store->Remove(a.info.id).value());
    REQUIRE(store->Remove(b.info.id).value());
    REQUIRE(store->Commit());
  }
  auto store = SqliteBundleStore::Open(path).value();
  CHECK(store->usage().bundles == 0);
  CHECK(store->usage().seen_ids == 2);
  REQUIRE(store->Put(c.info, c.bytes).value() == PutStatus::kStored);
  CHECK(c.info.store_seq == 3);  // above the seen IDs' keys (1 and 2), which stay remembered
  REQUIRE(store->Commit());
  CHECK(store->ForgetSeenBefore(clock::DtnTime::FromMillis(100'000)).value() == 2);
  REQUIRE(store->Commit());
  store.reset();
  store = SqliteBundleStore::Open(path).value();
  CHECK_FALSE(store->Seen(a.info.id));
  CHECK_FALSE(store->Seen(b.info.id));
  CHECK(store->Seen(c.info.id));
}

TEST_CASE("bundle store (SQLite): a file of another kind is refused and left alone") {
  test::TempDir dir;
  const std::string path = dir.File("other.db");
  {
    auto db = storage::Database::Open(path).value();
    REQUIRE(db.Exec("CREATE TABLE leases(x INTEGER)"));
  }
  auto store = SqliteBundleStore::Open(path);
  REQUIRE_FALSE(store.has_value());
  CHECK(store.error().kind == storage::Error::Kind::kForeignSchema);
}

// A store whose next commit fails, as a disk error would make it.
class FailingCommitStore : public MemoryBundleStore {
 public:
  bool fail_next = false;

 protected:
  storage::Status DoCommit() override {
    if (std::exchange(fail_next, false)) {
      return std::unexpected(storage::Error{storage::Error::Kind::kIo, "injected: disk I/O error", 5});
    }
    return MemoryBundleStore::DoCommit();
  }
};

TEST_CASE("bundle store: after a failed commit every later commit fails until the store is reopened") {
  FailingCommitStore store;
  TestBundle a = MakeTestBundle(1, 1000, 1, kDest3, Priority::kNormal, 60'000);
  TestBundle b = MakeTestBundle(1, 1000, 2, kDest3, Priority::kNormal, 60'000);
  REQUIRE(store.Put(a.info, a.bytes).value() == PutStatus::kStored);
  store.fail_next = true;
  auto first = store.Commit();
  REQUIRE_FALSE(first.has_value());
  CHECK(first.error().kind == storage::Error::Kind::kIo);
  // The implementation would commit this one (fail_next is spent), but the view is already ahead
  // of the durable state: nothing may be committed on top of it.
  REQUIRE(store.Put(b.info, b.bytes).value() == PutStatus::kStored);
  auto second = store.Commit();
  REQUIRE_FALSE(second.has_value());
  CHECK(second.error().kind == storage::Error::Kind::kMisuse);
  CHECK(second.error().message.find("injected: disk I/O error") != std::string::npos);
  CHECK(second.error().message.find("reopen") != std::string::npos);
  CHECK(store.commits() == 0);
  CHECK_FALSE(store.Commit().has_value());  // even with nothing new staged
}

}  // namespace
}  // namespace ics::dtn
