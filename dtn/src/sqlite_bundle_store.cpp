#include "dtn/sqlite_bundle_store.h"

#include <map>
#include <memory>
#include <optional>
#include <utility>


namespace ics::dtn {
namespace {

// No secondary SQL indexes: the node's questions are answered by the in-memory index rebuilt at
// open, and every extra B-tree would be written once per bundle stored and once per bundle
// removed (the hot path of a relay). The seen table is keyed by ID because it is written and
// deleted by ID.
constexpr storage::Migration kMigrations[] = {
    {1,
     "CREATE TABLE bundles("
     "  seq INTEGER PRIMARY KEY,"
     "  source TEXT NOT NULL,"
     "  created_ms INTEGER NOT NULL,"
     "  created_seq INTEGER NOT NULL,"
     "  fragment_offset INTEGER,"
     "  fragment_length INTEGER,"
     "  destination TEXT NOT NULL,"
     "  priority INTEGER NOT NULL CHECK (priority BETWEEN 0 AND 2),"
     "  disposition INTEGER NOT NULL CHECK (disposition BETWEEN 0 AND 1),"
     "  received_ms INTEGER NOT NULL,"
     "  expires_ms INTEGER NOT NULL,"
     "  delivered_once INTEGER NOT NULL DEFAULT 0,"
     "  bytes BLOB NOT NULL);"
     "CREATE TABLE seen(id TEXT PRIMARY KEY, expires_ms INTEGER NOT NULL) WITHOUT ROWID;"
     "CREATE TABLE counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"},
};

constexpr storage::SchemaSpec kSchema{"bundle store", kBundleStoreApplicationId, kMigrations};

// SQLite integers are signed: unsigned wire values (sequence numbers, offsets) are stored as
// their two's-complement bit pattern and read back the same way.
std::int64_t AsSigned(std::uint64_t v) { return static_cast<std::int64_t>(v); }
std::uint64_t AsUnsigned(std::int64_t v) { return static_cast<std::uint64_t>(v); }

storage::Error Corrupt(const std::string& path, std::string what) {
  return storage::Error{storage::Error::Kind::kCorrupt, path + ": " + std::move(what), 0};
}

}  // namespace

const storage::SchemaSpec& BundleStoreSchema() { return kSchema; }

// Writes run when they are staged, inside one immediate transaction that the first staged
// write opens and Commit() commits (one fsync): nothing is copied or queued per write, and reads
// (ReadBytes) see the staged writes because they run on the same connection. A write that fails
// marks the transaction failed: Commit() then rolls it back and reports the error (all or
// nothing), and the owner reopens the store (bundle_store.h).
struct SqliteBundleStore::Impl {
  explicit Impl(storage::Database database) : db(std::move(database)) {}
  ~Impl() {
    // Uncommitted writes are not durable: give them up explicitly.
    if (in_transaction) (void)db.Exec("ROLLBACK");
  }
  storage::Status Begin() {
    if (in_transaction) return {};
    if (auto st = db.Exec("BEGIN IMMEDIATE"); !st) return st;
    in_transaction = true;
    return {};
  }
  // Runs one staged write: opens the transaction if needed; a failure poisons the transaction.
  template <typename F>
  storage::Status Write(F&& run) {
    if (failed) return std::unexpected(*failed);
    storage::Status st = Begin();
    if (st) st = run();
    if (!st) failed = st.error();
    return st;
  }
  storage::Database db;
  storage::Statement insert_bundle;
  storage::Statement delete_bundle;
  storage::Statement mark_delivered;
  storage::Statement insert_seen;
  storage::Statement delete_seen;
  storage::Statement upsert_counter;
  storage::Statement select_bytes;
  std::map<std::string, std::uint64_t, std::less<>> pending_counters;  // staged counter values
  bool in_transaction = false;
  std::optional<storage::Error> failed;  // a staged write failed: the transaction is rolled back at Commit
  std::uint64_t commits = 0;
};

SqliteBundleStore::SqliteBundleStore(StoreLimits limits) : BundleStore(limits) {}
SqliteBundleStore::~SqliteBundleStore() = default;

const std::string& SqliteBundleStore::path() const { return impl_->db.path(); }
std::uint64_t SqliteBundleStore::commits() const { return impl_->commits; }

storage::Result<std::unique_ptr<SqliteBundleStore>> SqliteBundleStore::Open(const std::string& path,
                                                                            const SqliteBundleStoreOptions& options) {
  storage::OpenOptions open_options;
  open_options.durability = options.durability;
  open_options.wal = true;
  auto db = storage::Database::Open(path, open_options);
  if (!db) return std::unexpected(db.error());
  if (auto st = storage::Migrate(*db, kSchema); !st) return std::unexpected(st.error());
  // One writer owns a bundle store (its node daemon): an exclusive lock, taken at the first
  // transaction and held until close, saves the shared-memory lock calls SQLite otherwise makes
  // around every transaction (tens of fcntl() per commit). A second process opening the same
  // store gets SQLITE_BUSY, which is the right answer. The cache holds the working set of a busy
  // relay (bundles live for a round trip) so pages are not read back between commits, and a
  // larger WAL lets a page rewritten by many commits (bundles stored, then removed) reach the
  // database file once per checkpoint rather than once per 1,000 pages of WAL.
  if (auto st = db->Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=8192");
      !st) {
    return std::unexpected(st.error());
  }

  std::unique_ptr<SqliteBundleStore> store(new SqliteBundleStore(options.limits));
  store->impl_ = std::make_unique<Impl>(std::move(*db));
  Impl& impl = *store->impl_;
  struct Prep {
    storage::Statement* stmt;
    std::string_view sql;
  };
  const Prep preps[] = {
      {&impl.insert_bundle,
       "INSERT INTO bundles(seq, source, created_ms, created_seq, fragment_offset, fragment_length, destination,"
       " priority, disposition, received_ms, expires_ms, bytes, delivered_once)"
       " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)"},
      {&impl.delete_bundle, "DELETE FROM bundles WHERE seq = ?1"},
      {&impl.mark_delivered, "UPDATE bundles SET delivered_once = 1 WHERE seq = ?1"},
      {&impl.insert_seen, "INSERT OR REPLACE INTO seen(id, expires_ms) VALUES (?1, ?2)"},
      {&impl.delete_seen, "DELETE FROM seen WHERE id = ?1"},
      {&impl.upsert_counter,
       "INSERT INTO counters(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = excluded.value"},
      {&impl.select_bytes, "SELECT bytes FROM bundles WHERE seq = ?1"},
  };
  for (const Prep& p : preps) {
    auto stmt = impl.db.Prepare(p.sql);
    if (!stmt) return std::unexpected(stmt.error());
    *p.stmt = std::move(*stmt);
  }
  if (auto st = store->Load(); !st) return std::unexpected(st.error());
  return store;
}

storage::Status SqliteBundleStore::Load() {
  storage::Database& db = impl_->db;
  {
    auto stmt = db.Prepare("SELECT id, expires_ms FROM seen");
    if (!stmt) return std::unexpected(stmt.error());
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      auto id = ParseBundleIdText(stmt->TextView(0));
      if (!id) return std::unexpected(Corrupt(db.path(), "seen row: " + id.error()));
      RestoreSeen(*id, clock::DtnTime::FromMillis(stmt->Int(1)));
    }
  }
  {
    auto stmt = db.Prepare("SELECT name, value FROM counters");
    if (!stmt) return std::unexpected(stmt.error());
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      RestoreCounter(stmt->TextView(0), AsUnsigned(stmt->Int(1)));
    }
  }
  auto stmt = db.Prepare(
      "SELECT seq, source, created_ms, created_seq, fragment_offset, fragment_length, destination, priority,"
      " disposition, received_ms, expires_ms, delivered_once, length(bytes) FROM bundles ORDER BY seq");
  if (!stmt) return std::unexpected(stmt.error());
  while (true) {
    auto row = stmt->Step();
    if (!row) return std::unexpected(row.error());
    if (!*row) break;
    StoredBundleInfo info;
    info.store_seq = AsUnsigned(stmt->Int(0));
    const std::string where = "bundles row seq=" + std::to_string(info.store_seq);
    auto source = Eid::Parse(stmt->TextView(1));
    if (!source) return std::unexpected(Corrupt(db.path(), where + ": source: " + source.error()));
    auto destination = Eid::Parse(stmt->TextView(6));
    if (!destination) return std::unexpected(Corrupt(db.path(), where + ": destination: " + destination.error()));
    info.id.source = std::move(*source);
    info.id.created.time = clock::DtnTime::FromMillis(stmt->Int(2));
    info.id.created.sequence = AsUnsigned(stmt->Int(3));
    if (!stmt->IsNull(4)) info.id.fragment_offset = AsUnsigned(stmt->Int(4));
    if (!stmt->IsNull(5)) info.id.fragment_length = AsUnsigned(stmt->Int(5));
    info.destination = std::move(*destination);
    const std::int64_t priority = stmt->Int(7);
    const std::int64_t disposition = stmt->Int(8);
    if (priority < 0 || priority > 2 || disposition < 0 || disposition > 1) {
      return std::unexpected(Corrupt(db.path(), where + ": priority or disposition out of range"));
    }
    info.priority = static_cast<Priority>(priority);
    info.disposition = static_cast<BundleDisposition>(disposition);
    info.received_at = clock::DtnTime::FromMillis(stmt->Int(9));
    info.expires_at = clock::DtnTime::FromMillis(stmt->Int(10));
    info.delivered_once = stmt->Int(11) != 0;
    info.size_bytes = AsUnsigned(stmt->Int(12));
    if (Find(info.id) != nullptr) {
      return std::unexpected(Corrupt(db.path(), where + ": bundle " + info.id.ToString() + " stored twice"));
    }
    RestoreBundle(info);
  }
  return {};
}

storage::Status SqliteBundleStore::StagePut(const StoredBundleInfo& info, std::span<const std::uint8_t> bytes) {
  Impl& impl = *impl_;
  return impl.Write([&]() -> storage::Status {
    const std::string source = info.id.source.ToString();
    const std::string destination = info.destination.ToString();
    const std::string key = info.id.ToString();
    storage::Statement& s = impl.insert_bundle;
    s.Bind(1, AsSigned(info.store_seq))
        .BindUnowned(2, source)
        .Bind(3, info.id.created.time.millis())
        .Bind(4, AsSigned(info.id.created.sequence));
    if (info.id.fragment_offset) {
      s.Bind(5, AsSigned(*info.id.fragment_offset));
    } else {
      s.BindNull(5);
    }
    if (info.id.fragment_length) {
      s.Bind(6, AsSigned(*info.id.fragment_length));
    } else {
      s.BindNull(6);
    }
    s.BindUnowned(7, destination)
        .Bind(8, static_cast<int>(info.priority))
        .Bind(9, static_cast<int>(info.disposition))
        .Bind(10, info.received_at.millis())
        .Bind(11, info.expires_at.millis())
        .Bind(12, bytes)
        .Bind(13, info.delivered_once ? 1 : 0);
    if (auto st = s.Run(); !st) return st;
    return impl.insert_seen.BindUnowned(1, key).Bind(2, info.expires_at.millis()).Run();
  });
}

storage::Status SqliteBundleStore::StageRemove(const StoredBundleInfo& info) {
  Impl& impl = *impl_;
  return impl.Write([&] { return impl.delete_bundle.Bind(1, AsSigned(info.store_seq)).Run(); });
}

storage::Status SqliteBundleStore::StageDelivered(const StoredBundleInfo& info) {
  Impl& impl = *impl_;
  return impl.Write([&] { return impl.mark_delivered.Bind(1, AsSigned(info.store_seq)).Run(); });
}

storage::Status SqliteBundleStore::StageForgetSeen(const std::string& key) {
  Impl& impl = *impl_;
  return impl.Write([&] { return impl.delete_seen.Bind(1, std::string_view(key)).Run(); });
}

storage::Status SqliteBundleStore::StageCounter(std::string_view name, std::uint64_t value) {
  // Only a counter's last value before a commit matters (a node sets its creation sequence once
  // per bundle it sends): it is written once, by DoCommit, in the same transaction.
  auto it = impl_->pending_counters.find(name);
  if (it == impl_->pending_counters.end()) {
    impl_->pending_counters.emplace(std::string(name), value);
  } else {
    it->second = value;
  }
  return {};
}

storage::Result<std::vector<std::uint8_t>> SqliteBundleStore::LoadBytes(const StoredBundleInfo& info) const {
  storage::Statement& s = impl_->select_bytes;
  s.Bind(1, AsSigned(info.store_seq));
  auto row = s.Step();
  if (!row) return std::unexpected(row.error());
  if (!*row) {
    s.Reset();
    return std::unexpected(Corrupt(impl_->db.path(), "bundle " + info.id.ToString() + " (seq " +
                                                         std::to_string(info.store_seq) + ") has no row"));
  }
  std::vector<std::uint8_t> bytes = s.Blob(0);
  s.Reset();
  if (bytes.size() != info.size_bytes) {
    return std::unexpected(Corrupt(impl_->db.path(), "bundle " + info.id.ToString() + " has " +
                                                         std::to_string(bytes.size()) + " bytes, expected " +
                                                         std::to_string(info.size_bytes)));
  }
  return bytes;
}

storage::Status SqliteBundleStore::DoCommit() {
  Impl& impl = *impl_;
  for (const auto& [name, value] : impl.pending_counters) {
    (void)impl.Write([&] { return impl.upsert_counter.Bind(1, std::string_view(name)).Bind(2, AsSigned(value)).Run(); });
  }
  impl.pending_counters.clear();
  if (!impl.in_transaction && !impl.failed) return {};
  if (impl.failed) {
    storage::Error error = *impl.failed;
    if (impl.in_transaction) (void)impl.db.Exec("ROLLBACK");
    impl.in_transaction = false;
    impl.failed.reset();
    return std::unexpected(error);
  }
  if (auto st = impl.db.Exec("COMMIT"); !st) {
    // A failed COMMIT may leave the transaction open (SQLITE_BUSY) or already rolled back.
    (void)impl.db.Exec("ROLLBACK");
    impl.in_transaction = false;
    return st;
  }
  impl.in_transaction = false;
  ++impl.commits;
  return {};
}

}  // namespace ics::dtn
