// The bundle store: where a node keeps every bundle it has accepted until the bundle is delivered
// to a local endpoint, acknowledged by the next hop (hop-by-hop custody), or expired.
//
// One interface, two implementations: MemoryBundleStore (below: tests and the replayer) and
// SqliteBundleStore (dtn/sqlite_bundle_store.h: the durable one). Both answer the node's
// questions from the same in-memory index, which the SQLite store rebuilds from its file when it
// opens; they differ only in where the records and the bundle bytes live.
//
// Write protocol (group commit). Every write (Put, Remove, MarkDelivered, ForgetSeenBefore,
// SetCounter) is *staged*: it is visible to every read at once, and becomes durable at the next
// Commit(), which makes all staged writes durable together (one transaction, one fsync for the
// SQLite store). A Node relies on this contract with its driver:
//
//   the driver calls store.Commit() BEFORE it performs the node's output actions
//   (acknowledgements, transmissions, deliveries).
//
// so that nothing is acknowledged upstream, handed on, or delivered before it is on disk.
//
// Errors: a write or Commit that fails (an I/O error, disk full) leaves the in-memory view ahead
// of the durable one. The owner must then discard the store (and any Node built on it) and open
// it again; the file holds exactly the writes of the commits that succeeded.
//
// Duplicate suppression: every bundle ID that Put accepts is remembered as *seen* until the
// bundle's expiry time, whether the bundle is still stored or has left (delivered, forwarded and
// acknowledged). Put refuses a seen ID. ForgetSeenBefore(t) forgets the IDs whose bundles
// expired before t (a bundle that expired cannot legitimately arrive again).
//
// Quota: limits.max_bundles and limits.max_bytes bound what is stored (bytes = encoded bundle
// sizes). A Put that would exceed either is refused with kQuotaBundles / kQuotaBytes; stored
// bundles are never evicted to make room.
//
// Not thread-safe: one owner (the node's driver) calls everything.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clock/time.h"
#include "dtn/bundle.h"
#include "dtn/eid.h"
#include "storage/database.h"

namespace ics::dtn {

// Why a bundle is stored.
enum class BundleDisposition : std::uint8_t {
  kForward = 0,  // waiting for a next hop (or for its acknowledgement)
  kDeliver = 1,  // addressed to this node: waiting for its endpoint to register and confirm
};

// The record the store keeps beside a bundle's bytes (everything the node's questions need
// without decoding the bundle).
struct StoredBundleInfo {
  BundleId id;
  Eid destination;
  Priority priority = Priority::kNormal;
  BundleDisposition disposition = BundleDisposition::kForward;
  clock::DtnTime received_at;  // when this node accepted it (for the bundle age on forwarding)
  clock::DtnTime expires_at;   // it is deleted once now >= expires_at
  std::uint64_t size_bytes = 0;  // of the encoded bundle
  // Assigned by Put: increases with every bundle stored, across restarts. "Age order" below is
  // this order (oldest stored first).
  std::uint64_t store_seq = 0;
  // kDeliver only: a Deliver action for it was committed before (so a new one after a restart
  // may be a second delivery; see node.h).
  bool delivered_once = false;
};

struct StoreLimits {
  std::uint64_t max_bundles = 1'000'000;
  std::uint64_t max_bytes = 4ull << 30;
};

struct StoreUsage {
  std::uint64_t bundles = 0;
  std::uint64_t bytes = 0;
  std::uint64_t seen_ids = 0;  // remembered IDs (stored or not)
};

enum class PutStatus : std::uint8_t {
  kStored,
  kDuplicate,     // the ID is stored or was seen before (and has not expired)
  kQuotaBundles,  // refused: limits.max_bundles bundles are stored
  kQuotaBytes,    // refused: storing it would exceed limits.max_bytes
};
std::string_view PutStatusName(PutStatus status);  // "stored", "duplicate", "quota-bundles" ...

// The text form BundleId::ToString() writes ("ipn:2.1/815000000123.4", "#offset+len" for a
// fragment) back to the ID; the error names the text. (The store keeps seen IDs as this text.)
std::expected<BundleId, std::string> ParseBundleIdText(std::string_view text);

// A hash of a bundle ID without formatting it (the index's maps are keyed by the ID itself).
struct BundleIdHash {
  std::size_t operator()(const BundleId& id) const;
};

class BundleIndex;  // the in-memory index (private to the implementation)

class BundleStore {
 public:
  virtual ~BundleStore();
  BundleStore(const BundleStore&) = delete;
  BundleStore& operator=(const BundleStore&) = delete;

  // ---- Writes (staged: visible now, durable at Commit) ----

  // Stores a bundle. `info.store_seq` is assigned here (the value passed is ignored); the stored
  // record is returned through `info`. `info.delivered_once` true (kDeliver only; ignored
  // otherwise) stores it already marked delivered, as Put then MarkDelivered would, in one write.
  // REQUIRES: bytes.size() == info.size_bytes.
  storage::Result<PutStatus> Put(StoredBundleInfo& info, std::span<const std::uint8_t> bytes);
  // Removes a stored bundle (its ID stays seen until it expires). False if it was not stored.
  storage::Result<bool> Remove(const BundleId& id);
  // Records that a Deliver action was issued for a stored kDeliver bundle. False if not stored.
  storage::Result<bool> MarkDelivered(const BundleId& id);
  // Forgets seen IDs whose expiry is before t and that are not stored. Returns how many.
  storage::Result<std::size_t> ForgetSeenBefore(clock::DtnTime t);
  // A named persistent counter (e.g. the node's creation-timestamp sequence).
  storage::Status SetCounter(std::string_view name, std::uint64_t value);
  // Makes every staged write durable (all or nothing). Returns the number of writes committed
  // (0 when nothing was staged: no transaction, no fsync). Once a commit has failed, every later
  // one fails (kMisuse, naming the first error): the store must be reopened (see Errors above).
  storage::Result<std::size_t> Commit();
  // Writes staged since the last Commit.
  std::size_t staged() const { return staged_; }

  // Marks a stored kForward bundle as in flight (true: VisitQueue skips it) or back in the queue
  // (false). Not a write: in memory only, never persisted (after a restart every stored bundle is
  // queued). False if `id` is not a stored kForward bundle.
  bool SetInFlight(const BundleId& id, bool in_flight);

  // ---- Reads (include staged writes) ----

  const StoredBundleInfo* Find(const BundleId& id) const;
  // The encoded bundle, exactly as Put received it.
  storage::Result<std::vector<std::uint8_t>> ReadBytes(const BundleId& id) const;
  // Stored now, or stored before and not yet expired (see ForgetSeenBefore).
  bool Seen(const BundleId& id) const;
  // The kForward bundles whose destination's node is `destination_node` (Eid::NodeEid()) and
  // that are not marked in flight (SetInFlight), in priority order (expedited, normal, bulk) and
  // within a priority oldest first; `visit` returns false to stop. O(log n) to start, O(1) per
  // bundle visited. `visit` must not write.
  void VisitQueue(const Eid& destination_node, const std::function<bool(const StoredBundleInfo&)>& visit) const;
  // The destination nodes that have kForward bundles queued.
  std::vector<Eid> QueuedDestinations() const;
  // The kDeliver bundles for `endpoint`, oldest first (order of arrival).
  void VisitDeliveries(const Eid& endpoint, const std::function<bool(const StoredBundleInfo&)>& visit) const;
  // Every stored bundle with expires_at < t, earliest first, at most `limit`.
  std::vector<StoredBundleInfo> ExpiringBefore(clock::DtnTime t, std::size_t limit) const;
  // The earliest expires_at of a stored bundle.
  std::optional<clock::DtnTime> EarliestExpiry() const;
  std::optional<std::uint64_t> Counter(std::string_view name) const;
  StoreUsage usage() const;
  const StoreLimits& limits() const { return limits_; }

 protected:
  explicit BundleStore(StoreLimits limits);

  // Persistence hooks of an implementation. Each stages one write; DoCommit makes them durable.
  virtual storage::Status StagePut(const StoredBundleInfo& info, std::span<const std::uint8_t> bytes) = 0;
  virtual storage::Status StageRemove(const StoredBundleInfo& info) = 0;
  virtual storage::Status StageDelivered(const StoredBundleInfo& info) = 0;
  // `seen_key` is the key the ID was remembered under (RestoreSeen, or the store_seq Put gave it).
  virtual storage::Status StageForgetSeen(const BundleId& id, std::int64_t seen_key) = 0;
  virtual storage::Status StageCounter(std::string_view name, std::uint64_t value) = 0;
  virtual storage::Result<std::vector<std::uint8_t>> LoadBytes(const StoredBundleInfo& info) const = 0;
  virtual storage::Status DoCommit() = 0;

  // For an implementation restoring its state at open (not staged: already durable).
  void RestoreBundle(const StoredBundleInfo& info);
  // `seen_key`: the key StageForgetSeen will be given for it. Store sequence numbers assigned
  // from now on are above every positive seen_key (keys of new IDs are their store_seq).
  void RestoreSeen(const BundleId& id, clock::DtnTime expires_at, std::int64_t seen_key);
  void RestoreCounter(std::string_view name, std::uint64_t value);

 private:
  std::unexpected<storage::Error> Failed(storage::Error error);

  StoreLimits limits_;
  std::unique_ptr<BundleIndex> index_;
  std::size_t staged_ = 0;
  std::optional<storage::Error> commit_failed_;  // the first failed commit's error
};

// The in-memory store: the same behaviour, nothing durable (Commit only ends the batch).
class MemoryBundleStore : public BundleStore {
 public:
  explicit MemoryBundleStore(StoreLimits limits = {});
  ~MemoryBundleStore() override;
  std::uint64_t commits() const { return commits_; }

 protected:
  storage::Status StagePut(const StoredBundleInfo& info, std::span<const std::uint8_t> bytes) override;
  storage::Status StageRemove(const StoredBundleInfo& info) override;
  storage::Status StageDelivered(const StoredBundleInfo& info) override;
  storage::Status StageForgetSeen(const BundleId& id, std::int64_t seen_key) override;
  storage::Status StageCounter(std::string_view name, std::uint64_t value) override;
  storage::Result<std::vector<std::uint8_t>> LoadBytes(const StoredBundleInfo& info) const override;
  storage::Status DoCommit() override;

 private:
  struct Bytes;
  std::unique_ptr<Bytes> bytes_;
  std::uint64_t commits_ = 0;
};

}  // namespace ics::dtn
