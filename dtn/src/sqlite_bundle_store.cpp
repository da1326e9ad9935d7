#include "dtn/sqlite_bundle_store.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <unordered_map>
#include <utility>

#include "dtn/codec.h"

namespace ics::dtn {
namespace {

// No secondary SQL indexes: the node's questions are answered by the in-memory index rebuilt at
// open, and every extra B-tree would be written once per bundle stored and once per bundle
// removed (the hot path of a relay).
// Version 2 adds the segment columns (NULL: the bytes are in the row, as in every row a version
// 1 store wrote).
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
    {2,
     "ALTER TABLE bundles ADD COLUMN segment INTEGER;"
     "ALTER TABLE bundles ADD COLUMN segment_offset INTEGER;"
     "ALTER TABLE bundles ADD COLUMN segment_length INTEGER;"
     "ALTER TABLE bundles ADD COLUMN segment_crc INTEGER;"},
    // Version 3: seen rows keyed by an integer (the store_seq of the Put that accepted the ID, so
    // new rows go at the end of the B-tree) instead of the ID text. Rows of version 2 get -1, -2,
    // ... (never a store_seq).
    {3,
     "CREATE TABLE seen_v3(seq INTEGER PRIMARY KEY, id TEXT NOT NULL, expires_ms INTEGER NOT NULL);"
     "INSERT INTO seen_v3(seq, id, expires_ms)"
     " SELECT -row_number() OVER (ORDER BY id), id, expires_ms FROM seen;"
     "DROP TABLE seen;"
     "ALTER TABLE seen_v3 RENAME TO seen;"},
};

constexpr storage::SchemaSpec kSchema{"bundle store", kBundleStoreApplicationId, kMigrations};

// A segment record: "ICSR", the CRC-32C of the bundle, the store_seq (little-endian), the bundle.
// The header lets a reader tell a record from garbage or from another row's record.
constexpr std::array<std::uint8_t, 4> kRecordMagic = {'I', 'C', 'S', 'R'};
constexpr std::size_t kRecordHeaderBytes = 16;
constexpr std::size_t kMaxDamagedLines = 100;
// Records below this size are gathered in memory and written together (at the commit, or when
// kWriteBufferBytes have gathered); larger ones are written at once from the caller's buffer.
constexpr std::size_t kDirectWriteBytes = 32 * 1024;
constexpr std::size_t kWriteBufferBytes = 1 << 20;

// SQLite integers are signed: unsigned wire values (sequence numbers, offsets) are stored as
// their two's-complement bit pattern and read back the same way.
std::int64_t AsSigned(std::uint64_t v) { return static_cast<std::int64_t>(v); }
std::uint64_t AsUnsigned(std::int64_t v) { return static_cast<std::uint64_t>(v); }

storage::Error Corrupt(const std::string& path, std::string what) {
  return storage::Error{storage::Error::Kind::kCorrupt, path + ": " + std::move(what), 0};
}

// One bundle's segment record is missing or damaged: that bundle's bytes are gone, the store is
// otherwise sound (a Node drops the bundle; kCorrupt, the database itself, stops it).
storage::Error Damaged(const std::string& path, std::string what) {
  return storage::Error{storage::Error::Kind::kDamagedRecord, path + ": " + std::move(what), 0};
}

// Bounds on what a row or a file name may say, so that no sum of them overflows and no damaged
// row asks for an absurd allocation: segment numbers below 2^40, offsets below 2^48 (256 TiB),
// records below 2^32 bytes.
constexpr std::uint64_t kMaxSegmentNumber = std::uint64_t{1} << 40;
constexpr std::uint64_t kMaxSegmentOffset = std::uint64_t{1} << 48;
constexpr std::uint64_t kMaxRecordLength = std::uint64_t{1} << 32;

storage::Error IoError(const std::string& path, std::string_view what, int error_number) {
  const auto kind = error_number == ENOSPC || error_number == EDQUOT ? storage::Error::Kind::kFull
                                                                     : storage::Error::Kind::kIo;
  return storage::Error{kind, fmt::format("{}: {}: {}", path, what, std::strerror(error_number)), 0};
}

void PutLe(std::uint8_t* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * i));
}
std::uint64_t GetLe(const std::uint8_t* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{p[i]} << (8 * i);
  return v;
}

// "00000042.seg" -> 42; anything else (foreign files, temporaries) -> nullopt and is left alone.
std::optional<std::uint64_t> ParseSegmentName(std::string_view name) {
  constexpr std::string_view kSuffix = ".seg";
  if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return std::nullopt;
  const std::string_view digits = name.substr(0, name.size() - kSuffix.size());
  std::uint64_t n = 0;
  const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), n);
  if (r.ec != std::errc() || r.ptr != digits.data() + digits.size() || n == 0 || n >= kMaxSegmentNumber ||
      !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  return n;
}

// Closes an fd we own; EINTR on close still closes it on Linux.
void CloseFd(int& fd) {
  if (fd >= 0) (void)::close(fd);
  fd = -1;
}

std::optional<int> SyncPath(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0));
  if (fd < 0) return errno;
  const int rc = ::fsync(fd);
  const int error_number = errno;
  (void)::close(fd);
  if (rc != 0) return error_number;
  return std::nullopt;
}

}  // namespace

const storage::SchemaSpec& BundleStoreSchema() { return kSchema; }

// Writes run when they are staged, inside one immediate transaction that the first staged
// write opens and Commit() commits (one fsync): nothing is copied or queued per write, and reads
// (ReadBytes) see the staged writes because they run on the same connection. A write that fails
// marks the transaction failed: Commit() then rolls it back and reports the error (all or
// nothing), and the owner reopens the store (bundle_store.h).
//
// Bundles of segment_threshold_bytes or more go to segment files: records under
// kDirectWriteBytes are gathered in `pending` and written at the commit (or once
// kWriteBufferBytes have gathered), larger ones are written with pwritev() when staged. Reads of
// a record still in `pending` copy it from there. The durability order at Commit(), step by step:
//   1. write `pending`, then fdatasync every segment written since the last commit (its records
//      are on disk);
//   2. fsync the segment directory if a segment was created (its name is on disk), and the store's
//      directory if the segment directory was created;
//   3. COMMIT: the rows pointing at those records become durable;
//   4. unlink the segments whose last row this commit removed, or keep them as spares (a spare
//      becomes a new segment by a rename, fsynced with the directory at the commit, step 2).
// A crash before 3 leaves records no row points at (ignored; their segment is removed at the next
// open if no row points into it at all). A crash between 3 and 4 leaves segments without rows,
// removed at the next open, as are spares. A segment is never unlinked or reused before the
// COMMIT that removed its last row is durable, and never while it is the one being appended.
struct SqliteBundleStore::Impl {
  struct Location {
    std::uint64_t segment = 0;
    std::uint64_t offset = 0;  // of the record header
    std::uint64_t length = 0;  // of the bundle
    std::uint32_t crc = 0;     // CRC-32C of the bundle
  };
  struct Segment {
    int fd = -1;             // open while current or written since the last sync
    std::uint64_t size = 0;  // bytes in the file (appended or found at open)
    std::uint64_t live = 0;  // rows pointing into it (committed or staged)
    bool on_disk = true;     // false: rows point into it but Open() found no file
  };

  explicit Impl(storage::Database database) : db(std::move(database)) {}
  ~Impl() {
    // Uncommitted writes are not durable: give them up explicitly.
    if (in_transaction) (void)db.Exec("ROLLBACK");
    for (auto& [n, s] : segments) CloseFd(s.fd);
    CloseFd(read_fd);
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

  std::string SegmentPath(std::uint64_t n) const { return fmt::format("{}/{:08}.seg", segments_dir, n); }

  // Writes the buffered records of the current segment (no-op when none).
  storage::Status Flush() {
    if (pending.empty()) return {};
    Segment& s = segments.at(current);
    if (auto st = WriteAt(s.fd, current, pending_offset, {pending.data(), pending.size()}, {}); !st)
      return st;
    pending_offset += pending.size();
    pending.clear();
    return {};
  }

  // pwritev of `a` then `b` at `offset`, whole (retrying short writes).
  storage::Status WriteAt(int fd, std::uint64_t segment, std::uint64_t offset,
                          std::span<const std::uint8_t> a, std::span<const std::uint8_t> b) {
    const std::uint64_t total = a.size() + b.size();
    std::uint64_t done = 0;
    while (done < total) {
      iovec iov[2];
      int count = 0;
      if (done < a.size()) {
        iov[count++] = {const_cast<std::uint8_t*>(a.data()) + done, a.size() - done};
        if (!b.empty()) iov[count++] = {const_cast<std::uint8_t*>(b.data()), b.size()};
      } else {
        iov[count++] = {const_cast<std::uint8_t*>(b.data()) + (done - a.size()), total - done};
      }
      const ssize_t n = ::pwritev(fd, iov, count, static_cast<off_t>(offset + done));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        // The file's tail is unknown now: no more records go to this segment.
        const storage::Error error = IoError(
            SegmentPath(segment), fmt::format("write at offset {}", offset + done), n < 0 ? errno : EIO);
        pending.clear();
        Retire();
        return std::unexpected(error);
      }
      done += static_cast<std::uint64_t>(n);
    }
    return {};
  }

  // The current segment stops taking records (its buffered records must have been flushed, or be
  // given up after a failed write); it is reclaimed once it is synced and has no row.
  void Retire() {
    if (current == 0) return;
    auto it = segments.find(current);
    current = 0;
    pending.clear();
    if (it == segments.end()) return;
    if (it->second.live == 0) reclaim.push_back(it->first);
    if (std::find(unsynced.begin(), unsynced.end(), it->first) == unsynced.end()) CloseFd(it->second.fd);
  }

  storage::Status StartSegment() {
    if (auto st = Flush(); !st) return st;
    Retire();
    if (!segments_dir_exists) {
      if (::mkdir(segments_dir.c_str(), 0755) != 0 && errno != EEXIST) {
        return std::unexpected(IoError(segments_dir, "cannot create the segment directory", errno));
      }
      segments_dir_exists = true;
      parent_unsynced = true;
    }
    const std::uint64_t n = next_segment++;
    const std::string file = SegmentPath(n);
    int fd = -1;
    // A spare (a reclaimed segment) is renamed and overwritten from its start: its blocks are
    // allocated and written already, so appending to it changes no extent and no file size, and
    // its fdatasync waits for data only, not for a journal commit (nor for the discard an unlink
    // costs on a disk mounted with it). Records of its earlier life past the new ones are never
    // pointed at (a row names its record's store sequence number, which the read checks).
    while (fd < 0 && !spares.empty()) {
      const std::uint64_t spare = spares.back();
      spares.pop_back();
      if (::renameat2(AT_FDCWD, SegmentPath(spare).c_str(), AT_FDCWD, file.c_str(), RENAME_NOREPLACE) != 0) {
        (void)::unlink(SegmentPath(spare).c_str());
        continue;
      }
      fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
      if (fd < 0) (void)::unlink(file.c_str());
    }
    if (fd < 0) fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return std::unexpected(IoError(file, "cannot create segment", errno));
    segments[n] = Segment{fd, 0, 0, true};
    current = n;
    pending_offset = 0;
    dir_unsynced = true;
    return {};
  }

  // Appends one record to the current segment (rolling over when it is full). Small records are
  // buffered (one write per commit or per kWriteBufferBytes instead of one per bundle); large ones
  // are written at once, from the caller's bytes.
  storage::Result<Location> Append(std::uint64_t store_seq, std::span<const std::uint8_t> bytes) {
    const std::uint64_t record = kRecordHeaderBytes + bytes.size();
    if (current != 0 && segments.at(current).size > 0 && segments.at(current).size + record > roll_bytes) {
      if (auto st = StartSegment(); !st) return std::unexpected(st.error());
    }
    if (current == 0) {
      if (auto st = StartSegment(); !st) return std::unexpected(st.error());
    }
    Segment& s = segments.at(current);
    Location loc{current, s.size, bytes.size(), Crc32c(bytes)};
    std::array<std::uint8_t, kRecordHeaderBytes> header{};
    std::copy(kRecordMagic.begin(), kRecordMagic.end(), header.begin());
    PutLe(header.data() + 4, loc.crc, 4);
    PutLe(header.data() + 8, store_seq, 8);
    if (record >= kDirectWriteBytes) {
      if (auto st = Flush(); !st) return std::unexpected(st.error());
      if (auto st = WriteAt(s.fd, current, s.size, header, bytes); !st) return std::unexpected(st.error());
      pending_offset = s.size + record;
    } else {
      pending.insert(pending.end(), header.begin(), header.end());
      pending.insert(pending.end(), bytes.begin(), bytes.end());
    }
    s.size += record;
    if (std::find(unsynced.begin(), unsynced.end(), current) == unsynced.end()) unsynced.push_back(current);
    if (pending.size() >= kWriteBufferBytes) {
      if (auto st = Flush(); !st) return std::unexpected(st.error());
    }
    return loc;
  }

  // Steps 1 and 2 of the commit order above.
  storage::Status SyncSegments() {
    if (auto st = Flush(); !st) return st;
    for (std::uint64_t n : unsynced) {
      auto it = segments.find(n);
      if (it == segments.end() || it->second.fd < 0) continue;
      if (sync && ::fdatasync(it->second.fd) != 0) {
        return std::unexpected(IoError(SegmentPath(n), "fdatasync", errno));
      }
      if (n != current) CloseFd(it->second.fd);
    }
    unsynced.clear();
    if (sync && dir_unsynced) {
      if (auto e = SyncPath(segments_dir, true)) return std::unexpected(IoError(segments_dir, "fsync", *e));
    }
    if (sync && parent_unsynced) {
      const std::string parent = std::filesystem::path(segments_dir).parent_path().string();
      const std::string dir = parent.empty() ? "." : parent;
      if (auto e = SyncPath(dir, true)) return std::unexpected(IoError(dir, "fsync", *e));
    }
    dir_unsynced = parent_unsynced = false;
    return {};
  }

  // Step 4: after a successful COMMIT only.
  void Reclaim() {
    for (std::uint64_t n : reclaim) {
      auto it = segments.find(n);
      if (it == segments.end() || it->second.live != 0 || n == current) continue;
      if (std::find(unsynced.begin(), unsynced.end(), n) != unsynced.end()) continue;  // not yet
      CloseFd(it->second.fd);
      if (read_fd_segment == n) {
        CloseFd(read_fd);
        read_fd_segment = 0;
      }
      // Kept as a spare (StartSegment reuses it) or unlinked; either way a segment without rows,
      // which the next Open() removes if it is still there.
      if (it->second.on_disk) {
        if (spares.size() < spare_segments_max && it->second.size <= roll_bytes) {
          spares.push_back(n);
        } else {
          (void)::unlink(SegmentPath(n).c_str());
        }
      }
      segments.erase(it);
    }
    reclaim.clear();
  }

  void Unlocate(std::uint64_t store_seq) {
    auto it = located.find(store_seq);
    if (it == located.end()) return;
    auto s = segments.find(it->second.segment);
    if (s != segments.end() && --s->second.live == 0 && s->first != current) reclaim.push_back(s->first);
    located.erase(it);
    damaged_by_seq.erase(store_seq);
  }

  storage::Result<std::vector<std::uint8_t>> ReadRecord(const StoredBundleInfo& info,
                                                        const Location& loc) const {
    const std::string file = SegmentPath(loc.segment);
    const std::string where =
        fmt::format("offset {}: bundle {} (seq {})", loc.offset, info.id.ToString(), info.store_seq);
    if (auto d = damaged_by_seq.find(info.store_seq); d != damaged_by_seq.end()) {
      return std::unexpected(Damaged(file, where + ": " + d->second));
    }
    auto s = segments.find(loc.segment);
    // The size is bounded by the file before anything is allocated (Open() checked it against the
    // file; appends keep it).
    if (s == segments.end() || !s->second.on_disk ||
        loc.offset + kRecordHeaderBytes + loc.length > s->second.size || loc.length != info.size_bytes) {
      return std::unexpected(Damaged(file, where + ": record outside the segment"));
    }
    std::array<std::uint8_t, kRecordHeaderBytes> header{};
    std::vector<std::uint8_t> bytes(loc.length);
    if (loc.segment == current && loc.offset >= pending_offset) {
      // Still in the write buffer (staged in this transaction): a record never straddles it.
      const std::uint8_t* p = pending.data() + (loc.offset - pending_offset);
      std::copy(p, p + kRecordHeaderBytes, header.begin());
      std::copy(p + kRecordHeaderBytes, p + kRecordHeaderBytes + loc.length, bytes.begin());
    } else {
      int fd = s->second.fd;
      if (fd < 0) {
        if (read_fd_segment != loc.segment) {
          CloseFd(read_fd);
          read_fd_segment = 0;
          read_fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
          if (read_fd < 0) return std::unexpected(IoError(file, "open", errno));
          read_fd_segment = loc.segment;
        }
        fd = read_fd;
      }
      const std::uint64_t record = kRecordHeaderBytes + loc.length;
      std::uint64_t done = 0;
      while (done < record) {
        iovec iov[2];
        int count = 0;
        if (done < kRecordHeaderBytes) {
          iov[count++] = {header.data() + done, kRecordHeaderBytes - done};
          iov[count++] = {bytes.data(), bytes.size()};
        } else {
          iov[count++] = {bytes.data() + (done - kRecordHeaderBytes), record - done};
        }
        const ssize_t n = ::preadv(fd, iov, count, static_cast<off_t>(loc.offset + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return std::unexpected(IoError(file, where, errno));
        if (n == 0) return std::unexpected(Damaged(file, where + ": segment ends inside the record"));
        done += static_cast<std::uint64_t>(n);
      }
    }
    if (!std::equal(kRecordMagic.begin(), kRecordMagic.end(), header.begin())) {
      return std::unexpected(Damaged(file, where + ": no record header there"));
    }
    if (GetLe(header.data() + 8, 8) != info.store_seq) {
      return std::unexpected(Damaged(
          file, fmt::format("{}: the record there is of seq {}", where, GetLe(header.data() + 8, 8))));
    }
    const std::uint32_t computed = Crc32c(bytes);
    const auto in_header = static_cast<std::uint32_t>(GetLe(header.data() + 4, 4));
    if (computed != loc.crc || in_header != loc.crc) {
      return std::unexpected(
          Damaged(file, fmt::format("{}: CRC-32C mismatch: row 0x{:08x}, record 0x{:08x}, bytes 0x{:08x}",
                                    where, loc.crc, in_header, computed)));
    }
    return bytes;
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

  // Segments.
  std::string segments_dir;  // empty: segments off (":memory:")
  bool segments_dir_exists = false;
  std::uint64_t threshold_bytes = 0;  // 0: no new records
  std::uint64_t roll_bytes = 0;
  bool sync = true;                           // fdatasync segments (Durability::kFull)
  std::map<std::uint64_t, Segment> segments;  // every segment file on disk or pointed into
  std::uint64_t current = 0;                  // the segment being appended (0: none yet)
  std::uint64_t next_segment = 1;
  std::vector<std::uint8_t> pending;    // records of the current segment not yet written
  std::uint64_t pending_offset = 0;     // where `pending` goes in the current segment
  std::vector<std::uint64_t> unsynced;  // written since the last commit
  bool dir_unsynced = false;            // a segment was created since the last commit
  bool parent_unsynced = false;         // the segment directory was created since the last commit
  std::vector<std::uint64_t> reclaim;   // to unlink (or keep as spares) after the next successful commit
  std::vector<std::uint64_t> spares;    // reclaimed segments kept for StartSegment to reuse
  std::size_t spare_segments_max = 0;
  std::unordered_map<std::uint64_t, Location> located;            // store_seq -> its record, for segment rows
  std::unordered_map<std::uint64_t, std::string> damaged_by_seq;  // what Open() found wrong
  std::vector<std::string> damaged;
  std::unordered_map<std::uint64_t, std::string> open_ids;  // of segment rows, during Open() only
  mutable int read_fd = -1;  // the last segment read that is not open for writing
  mutable std::uint64_t read_fd_segment = 0;
};

SqliteBundleStore::SqliteBundleStore(StoreLimits limits) : BundleStore(limits) {}
SqliteBundleStore::~SqliteBundleStore() = default;

const std::string& SqliteBundleStore::path() const { return impl_->db.path(); }
const std::string& SqliteBundleStore::segments_dir() const { return impl_->segments_dir; }
std::uint64_t SqliteBundleStore::commits() const { return impl_->commits; }
const std::vector<std::string>& SqliteBundleStore::damaged() const { return impl_->damaged; }
std::size_t SqliteBundleStore::segment_files() const {
  return static_cast<std::size_t>(std::count_if(impl_->segments.begin(), impl_->segments.end(),
                                                [](const auto& s) { return s.second.on_disk; }));
}

storage::Result<std::unique_ptr<SqliteBundleStore>> SqliteBundleStore::Open(const std::string& path,
                                                                            const SqliteBundleStoreOptions& options) {
  storage::OpenOptions open_options;
  open_options.durability = options.durability;
  open_options.wal = true;
  auto db = storage::Database::Open(path, open_options);
  if (!db) return std::unexpected(db.error());
  if (auto st = storage::Migrate(*db, kSchema); !st) return std::unexpected(st.error());
  // One writer owns a bundle store (its node daemon): an exclusive lock, taken at the first
  // transaction (in Open, below) and held until close, saves the shared-memory lock calls SQLite
  // otherwise makes around every transaction (tens of fcntl() per commit). A second process
  // opening the same store gets SQLITE_BUSY, which is the right answer. The cache holds the
  // working set of a busy relay (bundles live for a round trip) so pages are not read back
  // between commits, and a larger WAL lets a page rewritten by many commits (bundles stored, then
  // removed) reach the database file once per checkpoint rather than once per 1,000 pages of WAL.
  if (auto st = db->Exec("PRAGMA locking_mode=EXCLUSIVE; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=8192");
      !st) {
    return std::unexpected(st.error());
  }

  std::unique_ptr<SqliteBundleStore> store(new SqliteBundleStore(options.limits));
  store->impl_ = std::make_unique<Impl>(std::move(*db));
  Impl& impl = *store->impl_;
  if (path != ":memory:" && !path.empty()) impl.segments_dir = path + ".segments";
  impl.threshold_bytes = impl.segments_dir.empty() ? 0 : options.segment_threshold_bytes;
  impl.roll_bytes = std::max<std::uint64_t>(options.segment_roll_bytes, 1);
  impl.spare_segments_max = options.spare_segments;
  impl.sync = options.durability == storage::Durability::kFull;
  struct Prep {
    storage::Statement* stmt;
    std::string_view sql;
  };
  const Prep preps[] = {
      {&impl.insert_bundle,
       "INSERT INTO bundles(seq, source, created_ms, created_seq, fragment_offset, fragment_length, "
       "destination,"
       " priority, disposition, received_ms, expires_ms, bytes, delivered_once, segment, segment_offset,"
       " segment_length, segment_crc)"
       " VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"},
      {&impl.delete_bundle, "DELETE FROM bundles WHERE seq = ?1"},
      {&impl.mark_delivered, "UPDATE bundles SET delivered_once = 1 WHERE seq = ?1"},
      {&impl.insert_seen, "INSERT INTO seen(seq, id, expires_ms) VALUES (?1, ?2, ?3)"},
      {&impl.delete_seen, "DELETE FROM seen WHERE seq = ?1"},
      {&impl.upsert_counter,
       "INSERT INTO counters(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET value = "
       "excluded.value"},
      {&impl.select_bytes, "SELECT bytes FROM bundles WHERE seq = ?1"},
  };
  for (const Prep& p : preps) {
    auto stmt = impl.db.Prepare(p.sql);
    if (!stmt) return std::unexpected(stmt.error());
    *p.stmt = std::move(*stmt);
  }
  // The lock first (BEGIN IMMEDIATE: kBusy while another process has the store open), then the
  // rows, then the segment files: a second opener must not remove the segment another process is
  // appending.
  if (auto st = impl.Begin(); !st) return std::unexpected(st.error());
  if (auto st = store->Load(); !st) return std::unexpected(st.error());
  if (auto st = store->RecoverSegments(); !st) return std::unexpected(st.error());
  if (auto st = impl.db.Exec("COMMIT"); !st) return std::unexpected(st.error());
  impl.in_transaction = false;
  return store;
}

storage::Status SqliteBundleStore::Load() {
  storage::Database& db = impl_->db;
  {
    auto stmt = db.Prepare("SELECT id, expires_ms, seq FROM seen");
    if (!stmt) return std::unexpected(stmt.error());
    while (true) {
      auto row = stmt->Step();
      if (!row) return std::unexpected(row.error());
      if (!*row) break;
      auto id = ParseBundleIdText(stmt->TextView(0));
      if (!id) return std::unexpected(Corrupt(db.path(), "seen row: " + id.error()));
      RestoreSeen(*id, clock::DtnTime::FromMillis(stmt->Int(1)), stmt->Int(2));
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
      " disposition, received_ms, expires_ms, delivered_once, length(bytes), segment, segment_offset,"
      " segment_length, segment_crc FROM bundles ORDER BY seq");
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
    if (!stmt->IsNull(13)) {
      const std::int64_t segment = stmt->Int(13);
      const std::int64_t offset = stmt->Int(14);
      const std::int64_t length = stmt->Int(15);
      const std::int64_t crc = stmt->Int(16);
      if (impl_->segments_dir.empty() || segment <= 0 || AsUnsigned(segment) >= kMaxSegmentNumber || offset < 0 ||
          AsUnsigned(offset) >= kMaxSegmentOffset || length < 0 || AsUnsigned(length) >= kMaxRecordLength ||
          crc < 0 || crc > 0xffffffffll || info.size_bytes != 0) {
        return std::unexpected(Corrupt(db.path(), where + ": bad segment location"));
      }
      info.size_bytes = AsUnsigned(length);
      impl_->located.emplace(info.store_seq,
                             Impl::Location{AsUnsigned(segment), AsUnsigned(offset), AsUnsigned(length),
                                            static_cast<std::uint32_t>(crc)});
      ++impl_->segments[AsUnsigned(segment)].live;
      impl_->open_ids.emplace(info.store_seq, info.id.ToString());
    }
    if (Find(info.id) != nullptr) {
      return std::unexpected(Corrupt(db.path(), where + ": bundle " + info.id.ToString() + " stored twice"));
    }
    RestoreBundle(info);
  }
  return {};
}

storage::Status SqliteBundleStore::RecoverSegments() {
  Impl& impl = *impl_;
  if (impl.segments_dir.empty()) return {};
  std::error_code ec;
  impl.segments_dir_exists = std::filesystem::is_directory(impl.segments_dir, ec);
  if (ec && ec != std::errc::no_such_file_or_directory) {
    // Not "absent": unreadable (permissions, I/O). Reading it as absent would report every
    // bundle in it damaged, and a Node drops damaged bundles: refuse to open instead.
    return std::unexpected(IoError(impl.segments_dir, "cannot examine the segment directory", ec.value()));
  }
  if (!impl.segments_dir_exists && !impl.located.empty()) {
    return std::unexpected(Corrupt(
        impl.segments_dir,
        fmt::format("missing, but {} stored bundles have their bytes there: restore the directory next to "
                    "the database (nothing was changed)",
                    impl.located.size())));
  }
  if (impl.segments_dir_exists) {
    // Its entry in the parent directory may never have been synced (created by a run that
    // stopped before its first commit): sync both before the first commit that relies on them.
    impl.dir_unsynced = impl.parent_unsynced = true;
  }
  std::uint64_t highest = impl.segments.empty() ? 0 : impl.segments.rbegin()->first;
  for (auto& [n, s] : impl.segments) s.on_disk = false;
  if (impl.segments_dir_exists) {
    std::filesystem::directory_iterator it(impl.segments_dir, ec);
    if (ec) return std::unexpected(IoError(impl.segments_dir, "cannot list", ec.value()));
    for (; it != std::filesystem::directory_iterator(); it.increment(ec)) {
      const auto n = ParseSegmentName(it->path().filename().string());
      if (!n) continue;
      highest = std::max(highest, *n);
      auto s = impl.segments.find(*n);
      const std::string file = impl.SegmentPath(*n);
      if (s == impl.segments.end()) {
        // No row points into it: its records were never committed, or the commit that removed its
        // last row did not get to unlink it.
        if (::unlink(file.c_str()) != 0 && errno != ENOENT) {
          return std::unexpected(IoError(file, "cannot remove orphan segment", errno));
        }
        continue;
      }
      struct stat st {};
      if (::stat(file.c_str(), &st) != 0) return std::unexpected(IoError(file, "stat", errno));
      s->second.on_disk = true;
      s->second.size = static_cast<std::uint64_t>(st.st_size);
    }
    if (ec) return std::unexpected(IoError(impl.segments_dir, "cannot list", ec.value()));
  }
  impl.next_segment = highest + 1;
  // Rows whose record is not (wholly) there: reported, kept (the operator decides), and every
  // other bundle is served as usual.
  std::vector<std::pair<std::uint64_t, std::string>> found;
  for (const auto& [seq, loc] : impl.located) {
    const Impl::Segment& s = impl.segments.at(loc.segment);
    if (!s.on_disk) {
      found.emplace_back(seq, "segment missing");
    } else if (loc.offset + kRecordHeaderBytes + loc.length > s.size) {
      found.emplace_back(seq, fmt::format("segment too short ({} bytes, the record ends at {})", s.size,
                                          loc.offset + kRecordHeaderBytes + loc.length));
    }
  }
  std::sort(found.begin(), found.end());
  for (const auto& [seq, what] : found) {
    const Impl::Location& loc = impl.located.at(seq);
    if (impl.damaged.size() < kMaxDamagedLines) {
      impl.damaged.push_back(fmt::format("{}: offset {}: bundle {} (seq {}): {}",
                                         impl.SegmentPath(loc.segment), loc.offset, impl.open_ids[seq], seq,
                                         what));
    }
    impl.damaged_by_seq.emplace(seq, what);
  }
  if (found.size() > kMaxDamagedLines) {
    impl.damaged.back() = fmt::format("... and {} more damaged bundles", found.size() - kMaxDamagedLines + 1);
  }
  impl.open_ids.clear();
  return {};
}

storage::Status SqliteBundleStore::StagePut(const StoredBundleInfo& info, std::span<const std::uint8_t> bytes) {
  Impl& impl = *impl_;
  return impl.Write([&]() -> storage::Status {
    std::optional<Impl::Location> loc;
    if (impl.threshold_bytes > 0 && bytes.size() >= impl.threshold_bytes) {
      auto appended = impl.Append(info.store_seq, bytes);
      if (!appended) return std::unexpected(appended.error());
      loc = *appended;
    }
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
        .Bind(12, loc ? std::span<const std::uint8_t>() : bytes)
        .Bind(13, info.delivered_once ? 1 : 0);
    if (loc) {
      s.Bind(14, AsSigned(loc->segment))
          .Bind(15, AsSigned(loc->offset))
          .Bind(16, AsSigned(loc->length))
          .Bind(17, static_cast<std::int64_t>(loc->crc));
    } else {
      s.BindNull(14).BindNull(15).BindNull(16).BindNull(17);
    }
    if (auto st = s.Run(); !st) return st;
    if (loc) {
      impl.located.emplace(info.store_seq, *loc);
      ++impl.segments.at(loc->segment).live;
    }
    return impl.insert_seen.Bind(1, AsSigned(info.store_seq))
        .BindUnowned(2, key)
        .Bind(3, info.expires_at.millis())
        .Run();
  });
}

storage::Status SqliteBundleStore::StageRemove(const StoredBundleInfo& info) {
  Impl& impl = *impl_;
  return impl.Write([&]() -> storage::Status {
    if (auto st = impl.delete_bundle.Bind(1, AsSigned(info.store_seq)).Run(); !st) return st;
    impl.Unlocate(info.store_seq);
    return {};
  });
}

storage::Status SqliteBundleStore::StageDelivered(const StoredBundleInfo& info) {
  Impl& impl = *impl_;
  return impl.Write([&] { return impl.mark_delivered.Bind(1, AsSigned(info.store_seq)).Run(); });
}

storage::Status SqliteBundleStore::StageForgetSeen(const BundleId&, std::int64_t seen_key) {
  Impl& impl = *impl_;
  return impl.Write([&] { return impl.delete_seen.Bind(1, seen_key).Run(); });
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
  if (auto loc = impl_->located.find(info.store_seq); loc != impl_->located.end()) {
    return impl_->ReadRecord(info, loc->second);
  }
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
  auto give_up = [&](storage::Error error) -> storage::Status {
    // The rows come back: no segment may be unlinked on their account (the owner reopens).
    if (impl.in_transaction) (void)impl.db.Exec("ROLLBACK");
    impl.in_transaction = false;
    impl.failed.reset();
    impl.reclaim.clear();
    return std::unexpected(std::move(error));
  };
  if (impl.failed) return give_up(*impl.failed);
  if (auto st = impl.SyncSegments(); !st) return give_up(st.error());
  if (auto st = impl.db.Exec("COMMIT"); !st) return give_up(st.error());
  impl.in_transaction = false;
  ++impl.commits;
  impl.Reclaim();
  return {};
}

}  // namespace ics::dtn
