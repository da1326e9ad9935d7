#include "dtn/sqlite_bundle_store.h"

#include <memory>
#include <unordered_map>
#include <utility>

#include "storage/group_commit.h"

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

struct SqliteBundleStore::Impl {
  explicit Impl(storage::Database database) : db(std::move(database)), group(db, std::size_t{1} << 20) {}
  storage::Database db;
  storage::GroupCommit group;
  storage::Statement insert_bundle;
  storage::Statement delete_bundle;
  storage::Statement mark_delivered;
  storage::Statement insert_seen;
  storage::Statement delete_seen;
  storage::Statement upsert_counter;
  storage::Statement select_bytes;
  // Bytes of bundles whose INSERT is staged but not yet committed: ReadBytes must see them.
  std::unordered_map<std::uint64_t, std::shared_ptr<const std::vector<std::uint8_t>>> staged_bytes;
};

SqliteBundleStore::SqliteBundleStore(StoreLimits limits) : BundleStore(limits) {}
SqliteBundleStore::~SqliteBundleStore() = default;

const std::string& SqliteBundleStore::path() const { return impl_->db.path(); }
std::uint64_t SqliteBundleStore::commits() const { return impl_->group.commits(); }

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
       " priority, disposition, received_ms, expires_ms, bytes) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"},
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
      RestoreSeen(stmt->Text(0), clock::DtnTime::FromMillis(stmt->Int(1)));
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
  auto data = std::make_shared<const std::vector<std::uint8_t>>(bytes.begin(), bytes.end());
  impl_->staged_bytes[info.store_seq] = data;
  Impl* impl = impl_.get();
  auto staged = impl_->group.Stage([impl, info, data, key = info.id.ToString(),
                                    source = info.id.source.ToString(),
                                    destination = info.destination.ToString()](storage::Database&) -> storage::Status {
    storage::Statement& s = impl->insert_bundle;
    s.Bind(1, AsSigned(info.store_seq))
        .Bind(2, std::string_view(source))
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
    s.Bind(7, std::string_view(destination))
        .Bind(8, static_cast<int>(info.priority))
        .Bind(9, static_cast<int>(info.disposition))
        .Bind(10, info.received_at.millis())
        .Bind(11, info.expires_at.millis())
        .Bind(12, std::span<const std::uint8_t>(*data));
    if (auto st = s.Run(); !st) return st;
    return impl->insert_seen.Bind(1, std::string_view(key)).Bind(2, info.expires_at.millis()).Run();
  });
  if (!staged) return std::unexpected(staged.error());
  return {};
}

storage::Status SqliteBundleStore::StageRemove(const StoredBundleInfo& info) {
  impl_->staged_bytes.erase(info.store_seq);
  Impl* impl = impl_.get();
  auto staged = impl_->group.Stage([impl, seq = AsSigned(info.store_seq)](storage::Database&) {
    return impl->delete_bundle.Bind(1, seq).Run();
  });
  if (!staged) return std::unexpected(staged.error());
  return {};
}

storage::Status SqliteBundleStore::StageDelivered(const StoredBundleInfo& info) {
  Impl* impl = impl_.get();
  auto staged = impl_->group.Stage([impl, seq = AsSigned(info.store_seq)](storage::Database&) {
    return impl->mark_delivered.Bind(1, seq).Run();
  });
  if (!staged) return std::unexpected(staged.error());
  return {};
}

storage::Status SqliteBundleStore::StageForgetSeen(const std::string& key) {
  Impl* impl = impl_.get();
  auto staged = impl_->group.Stage(
      [impl, key](storage::Database&) { return impl->delete_seen.Bind(1, std::string_view(key)).Run(); });
  if (!staged) return std::unexpected(staged.error());
  return {};
}

storage::Status SqliteBundleStore::StageCounter(std::string_view name, std::uint64_t value) {
  Impl* impl = impl_.get();
  auto staged = impl_->group.Stage([impl, name = std::string(name), value = AsSigned(value)](storage::Database&) {
    return impl->upsert_counter.Bind(1, std::string_view(name)).Bind(2, value).Run();
  });
  if (!staged) return std::unexpected(staged.error());
  return {};
}

storage::Result<std::vector<std::uint8_t>> SqliteBundleStore::LoadBytes(const StoredBundleInfo& info) const {
  if (auto it = impl_->staged_bytes.find(info.store_seq); it != impl_->staged_bytes.end()) return *it->second;
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
  auto flushed = impl_->group.Flush();
  if (!flushed) return std::unexpected(flushed.error());
  impl_->staged_bytes.clear();
  return {};
}

}  // namespace ics::dtn
