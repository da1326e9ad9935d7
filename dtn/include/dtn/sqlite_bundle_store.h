// The durable bundle store: one SQLite file (WAL, synchronous=FULL) and, for large bundles, a
// directory of append-only segment files beside it. Each staged write runs at once inside one
// open transaction (begun by the first write after a Commit), and Commit() commits it: one
// transaction and one fsync for any number of staged writes (plus one fdatasync per segment file
// written since the last commit). A staged write that fails makes the next Commit() roll
// everything back and report that error. See dtn/bundle_store.h for the contract. The file is
// locked exclusively from Open() until the store is closed (one owner: its node daemon); another
// process opening it meanwhile gets a kBusy error and touches nothing.
//
// File layout (application_id kBundleStoreApplicationId, migrations in sqlite_bundle_store.cpp):
//   bundles(seq INTEGER PRIMARY KEY,            -- StoredBundleInfo::store_seq
//           source TEXT, created_ms, created_seq, fragment_offset, fragment_length,
//           destination TEXT, priority, disposition, received_ms, expires_ms,
//           delivered_once,
//           bytes BLOB,                         -- the encoded bundle, as received; empty when
//                                               -- it is in a segment:
//           segment, segment_offset,            -- segment file number and the byte offset of
//           segment_length, segment_crc)        -- its record; bundle size; CRC-32C of the bundle
//   seen(seq INTEGER PRIMARY KEY, id TEXT,      -- every accepted bundle: the store_seq it was
//        expires_ms)                            -- stored under (rows migrated from version 2:
//                                               -- -1, -2, ...) and BundleId::ToString()
//   counters(name TEXT PRIMARY KEY, value)      -- e.g. the node's creation sequence
//
// Segments (PATH.segments/NNNNNNNN.seg, NNNNNNNN the segment number in decimal). A bundle of at
// least options.segment_threshold_bytes is appended to the current segment as one record
// (16-byte header: "ICSR", CRC-32C of the bundle, store_seq; then the bundle) with plain write()
// when it is staged; Commit() fdatasyncs every segment written since the last commit (and the
// directory, when a segment was created) BEFORE the SQLite COMMIT of the rows that point into
// them, so a committed row never points at bytes that are not on disk. The current segment rolls
// to a new one when a record would take it past options.segment_roll_bytes. A segment is
// reclaimed once no row points into it and it is no longer the current one, after the COMMIT that
// removed its last row: kept as a spare (up to options.spare_segments) or unlinked. A new segment
// is a spare renamed to the next number (the directory is fsynced before any row points into it)
// and overwritten from its start, when there is one: writing over allocated blocks changes no
// extent and no file size, so its fdatasync waits for the data only. The records of its earlier
// life past the new ones are never read: a row names its record's store sequence number, which
// every read checks.
// Recovery (Open): the rows are the truth. Bytes past the last committed record of a segment
// (written, then the process died before the COMMIT, or left from a spare's earlier life) are
// ignored: a store never appends to (or reuses) a segment found at Open. Segment files no row
// points into (spares among them) are removed. A row whose segment is missing or too short is
// reported (damaged(), and a kDamagedRecord error from ReadBytes naming the file and the offset)
// and loses no other bundle (below Durability::kFull, where records are not fdatasynced, a record
// lost in a reused spare is not "too short": damaged() misses it and the read reports it); a record whose header or CRC does not match
// its row is a kDamagedRecord error from ReadBytes naming the file and the offset, never returned
// as data. A segment directory that is missing while rows point into it, or that cannot be
// examined, makes Open() fail (nothing is changed): it is not taken as every record damaged.
//
// Open() reads every row of bundles (not the bytes), seen and counters to rebuild the index, so
// opening costs O(stored + seen) time and memory, plus one directory listing; bundle bytes are
// read on demand (ReadBytes).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dtn/bundle_store.h"
#include "storage/database.h"
#include "storage/schema.h"

namespace ics::dtn {

// "ICSB" in ASCII: PRAGMA application_id of bundle store files.
inline constexpr std::int32_t kBundleStoreApplicationId = 0x49435342;
const storage::SchemaSpec& BundleStoreSchema();

struct SqliteBundleStoreOptions {
  StoreLimits limits;
  // kFull in production: a committed bundle survives power loss. Tests may lower it (below kFull
  // segment files are not fdatasync'd either).
  storage::Durability durability = storage::Durability::kFull;
  // Encoded bundles of at least this many bytes go to a segment file; smaller ones stay in their
  // SQLite row. 0: every bundle stays in SQLite (no segment directory is created). A store whose
  // path is ":memory:" keeps everything in SQLite. (dtn/bench/README.md: why 512 bytes.)
  std::uint64_t segment_threshold_bytes = 512;
  // A segment rolls over once a record would take it past this size (a record larger than this
  // gets a segment of its own). Smaller segments are reclaimed sooner: one long-lived bundle
  // keeps its whole segment on disk.
  std::uint64_t segment_roll_bytes = 16 << 20;
  // Reclaimed segments kept to be reused as new ones instead of unlinked: only those of at most
  // segment_roll_bytes (a segment holding one larger record is unlinked), so spares hold at most
  // spare_segments x segment_roll_bytes of disk beside the bundles (not counted by `limits`; the
  // bytes of removed bundles stay in them until overwritten). With 64 KiB bundles through the
  // chain bench, 2 spares moved ~10 % more per second than unlinking and creating
  // (dtn/bench/README.md). 0: unlink them.
  std::size_t spare_segments = 2;
};

class SqliteBundleStore final : public BundleStore {
 public:
  // Opens (creating if missing) the store at `path` and its segment directory, migrates it, takes
  // its lock, recovers the segments (above) and rebuilds the index. Errors name the file: not a
  // bundle store (kForeignSchema), newer (kNewerSchema), corrupt, locked by another process
  // (kBusy), I/O. A row that fails to parse (a corrupt or foreign-written file) is kCorrupt,
  // naming it.
  static storage::Result<std::unique_ptr<SqliteBundleStore>> Open(const std::string& path,
                                                                  const SqliteBundleStoreOptions& options = {});
  ~SqliteBundleStore() override;

  const std::string& path() const;
  // PATH.segments (empty when segments are off).
  const std::string& segments_dir() const;
  std::uint64_t commits() const;  // transactions committed by Commit() so far
  // What Open() found wrong with stored bundles' segments, one line each ("<file>: offset N:
  // bundle <id> (seq S): segment missing"), at most 100 lines (the rest are counted in the last).
  // Those bundles stay stored; reading one is a kDamagedRecord error.
  const std::vector<std::string>& damaged() const;
  // Segment files on disk now that rows may point into (for tests and tools; spares not counted).
  std::size_t segment_files() const;

 protected:
  storage::Status StagePut(const StoredBundleInfo& info, std::span<const std::uint8_t> bytes) override;
  storage::Status StageRemove(const StoredBundleInfo& info) override;
  storage::Status StageDelivered(const StoredBundleInfo& info) override;
  storage::Status StageForgetSeen(const BundleId& id, std::int64_t seen_key) override;
  storage::Status StageCounter(std::string_view name, std::uint64_t value) override;
  storage::Result<std::vector<std::uint8_t>> LoadBytes(const StoredBundleInfo& info) const override;
  storage::Status DoCommit() override;

 private:
  struct Impl;
  explicit SqliteBundleStore(StoreLimits limits);
  storage::Status Load();
  storage::Status RecoverSegments();
  std::unique_ptr<Impl> impl_;
};

}  // namespace ics::dtn
