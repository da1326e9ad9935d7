#include "dtn/bundle_store.h"

#include <fmt/format.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <unordered_map>
#include <utility>

namespace ics::dtn {

std::string_view PutStatusName(PutStatus status) {
  switch (status) {
    case PutStatus::kStored: return "stored";
    case PutStatus::kDuplicate: return "duplicate";
    case PutStatus::kQuotaBundles: return "quota-bundles";
    case PutStatus::kQuotaBytes: return "quota-bytes";
  }
  return "?";
}

std::expected<BundleId, std::string> ParseBundleIdText(std::string_view text) {
  auto bad = [&](std::string_view what) {
    return std::unexpected(fmt::format("bundle id '{}': {}", text, what));
  };
  BundleId id;
  std::string_view main = text;
  // A fragment suffix follows the creation timestamp, i.e. the last '/' (a dtn: source may
  // itself hold a '#').
  const auto last_slash = text.rfind('/');
  if (const auto hash = text.rfind('#');
      hash != std::string_view::npos && last_slash != std::string_view::npos && hash > last_slash) {
    const std::string_view fragment = text.substr(hash + 1);
    main = text.substr(0, hash);
    const auto plus = fragment.find('+');
    std::uint64_t offset = 0, length = 0;
    if (plus == std::string_view::npos) return bad("fragment without '+'");
    const auto a = std::from_chars(fragment.data(), fragment.data() + plus, offset);
    const auto b = std::from_chars(fragment.data() + plus + 1, fragment.data() + fragment.size(), length);
    if (plus == 0 || plus + 1 == fragment.size() || a.ec != std::errc() || a.ptr != fragment.data() + plus ||
        b.ec != std::errc() || b.ptr != fragment.data() + fragment.size()) {
      return bad("bad fragment offset or length");
    }
    id.fragment_offset = offset;
    id.fragment_length = length;
  }
  // The source EID may contain '/' (dtn://node/service), so split at the last '/'.
  const auto slash = main.rfind('/');
  if (slash == std::string_view::npos || slash == 0) return bad("no '/'");
  auto eid = Eid::Parse(main.substr(0, slash));
  if (!eid) return bad(eid.error());
  const std::string_view rest = main.substr(slash + 1);
  const auto dot = rest.find('.');
  if (dot == std::string_view::npos) return bad("no '.'");
  std::int64_t ms = 0;
  std::uint64_t seq = 0;
  const auto a = std::from_chars(rest.data(), rest.data() + dot, ms);
  const auto b = std::from_chars(rest.data() + dot + 1, rest.data() + rest.size(), seq);
  if (a.ec != std::errc() || a.ptr != rest.data() + dot || b.ec != std::errc() ||
      b.ptr != rest.data() + rest.size() || dot == 0 || dot + 1 == rest.size()) {
    return bad("bad creation timestamp");
  }
  id.source = std::move(*eid);
  id.created = {clock::DtnTime::FromMillis(ms), seq};
  return id;
}

std::size_t BundleIdHash::operator()(const BundleId& id) const {
  // splitmix64's finaliser over the fields; a dtn: source adds its text's hash.
  auto mix = [](std::uint64_t h, std::uint64_t v) {
    h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    return h;
  };
  std::uint64_t h = static_cast<std::uint64_t>(id.source.scheme());
  h = mix(h, id.source.node());
  h = mix(h, id.source.service());
  if (!id.source.dtn_ssp().empty()) h = mix(h, std::hash<std::string>{}(id.source.dtn_ssp()));
  h = mix(h, static_cast<std::uint64_t>(id.created.time.millis()));
  h = mix(h, id.created.sequence);
  if (id.fragment_offset || id.fragment_length) {
    h = mix(h, id.fragment_offset.value_or(0) + 1);
    h = mix(h, id.fragment_length.value_or(0));
  }
  return static_cast<std::size_t>(h);
}

// The node asks its questions per bundle, tens of thousands of times a second: they are answered
// from these maps, never from SQL, and keyed by the ID itself (hashed, never formatted as text).
// Entries live in an unordered_map, whose nodes never move, so the ordered views can point at
// them.
class BundleIndex {
 public:
  struct Entry {
    StoredBundleInfo info;
    bool in_flight = false;  // out of its queue (BundleStore::SetInFlight)
  };
  using Map = std::unordered_map<BundleId, Entry, BundleIdHash>;
  // Expedited (2) first, then normal, then bulk; within a priority by store order.
  using QueueKey = std::pair<int, std::uint64_t>;
  static QueueKey QueueKeyOf(const StoredBundleInfo& info) {
    return {2 - static_cast<int>(info.priority), info.store_seq};
  }
  using ExpiryKey = std::pair<std::int64_t, std::uint64_t>;
  static ExpiryKey ExpiryKeyOf(const StoredBundleInfo& info) {
    return {info.expires_at.millis(), info.store_seq};
  }

  void Insert(const StoredBundleInfo& info) {
    auto [it, inserted] = by_key.try_emplace(info.id, Entry{info, false});
    if (!inserted) {
      std::fprintf(stderr, "bundle store: bundle %s indexed twice\n", info.id.ToString().c_str());
      std::abort();
    }
    const Entry* e = &it->second;
    if (info.disposition == BundleDisposition::kForward) {
      queues[info.destination.NodeEid()].emplace(QueueKeyOf(info), e);
    } else {
      deliveries[info.destination].emplace(info.store_seq, e);
    }
    by_expiry.emplace(ExpiryKeyOf(info), e);
    bytes += info.size_bytes;
    if (info.store_seq >= next_seq) next_seq = info.store_seq + 1;
  }

  void Unqueue(const StoredBundleInfo& info) {
    auto q = queues.find(info.destination.NodeEid());
    q->second.erase(QueueKeyOf(info));
    if (q->second.empty()) queues.erase(q);
  }

  void Erase(Map::iterator it) {
    const StoredBundleInfo& info = it->second.info;
    if (info.disposition == BundleDisposition::kForward) {
      if (!it->second.in_flight) Unqueue(info);
    } else {
      auto d = deliveries.find(info.destination);
      d->second.erase(info.store_seq);
      if (d->second.empty()) deliveries.erase(d);
    }
    by_expiry.erase(ExpiryKeyOf(info));
    bytes -= info.size_bytes;
    by_key.erase(it);
  }

  void AddSeen(const BundleId& id, clock::DtnTime expires_at, std::int64_t key) {
    auto [it, inserted] = seen.try_emplace(id, Seen{expires_at, key});
    if (!inserted) {
      seen_by_expiry.erase({it->second.expires_at.millis(), id});
      it->second = Seen{expires_at, key};
    }
    seen_by_expiry.emplace(expires_at.millis(), id);
    if (key > 0 && static_cast<std::uint64_t>(key) >= next_seq)
      next_seq = static_cast<std::uint64_t>(key) + 1;
  }

  Map by_key;
  std::map<Eid, std::map<QueueKey, const Entry*>> queues;           // kForward not in flight, by destination node
  std::map<Eid, std::map<std::uint64_t, const Entry*>> deliveries;  // kDeliver, by endpoint
  std::map<ExpiryKey, const Entry*> by_expiry;
  struct Seen {
    clock::DtnTime expires_at;
    std::int64_t key = 0;  // for StageForgetSeen
  };
  std::unordered_map<BundleId, Seen, BundleIdHash> seen;
  std::set<std::pair<std::int64_t, BundleId>> seen_by_expiry;
  std::map<std::string, std::uint64_t, std::less<>> counters;
  std::uint64_t bytes = 0;
  std::uint64_t next_seq = 1;
};

// A write that failed to stage still counts as staged, so that the next Commit() goes to the
// implementation, which reports the failure (it must not commit the writes before it alone).
std::unexpected<storage::Error> BundleStore::Failed(storage::Error error) {
  ++staged_;
  return std::unexpected(std::move(error));
}

BundleStore::BundleStore(StoreLimits limits) : limits_(limits), index_(std::make_unique<BundleIndex>()) {}
BundleStore::~BundleStore() = default;

storage::Result<PutStatus> BundleStore::Put(StoredBundleInfo& info, std::span<const std::uint8_t> bytes) {
  if (bytes.size() != info.size_bytes) {
    std::fprintf(stderr, "bundle store: Put with size_bytes %llu but %zu bytes\n",
                 static_cast<unsigned long long>(info.size_bytes), bytes.size());
    std::abort();
  }
  if (index_->seen.contains(info.id) || index_->by_key.contains(info.id)) return PutStatus::kDuplicate;
  if (index_->by_key.size() + 1 > limits_.max_bundles) return PutStatus::kQuotaBundles;
  if (index_->bytes + info.size_bytes > limits_.max_bytes) return PutStatus::kQuotaBytes;
  info.store_seq = index_->next_seq;
  // Marked delivered at once only when asked (a kDeliver bundle delivered in its own commit).
  info.delivered_once = info.delivered_once && info.disposition == BundleDisposition::kDeliver;
  if (auto st = StagePut(info, bytes); !st) return Failed(st.error());
  ++staged_;
  index_->AddSeen(info.id, info.expires_at, static_cast<std::int64_t>(info.store_seq));
  index_->Insert(info);
  return PutStatus::kStored;
}

storage::Result<bool> BundleStore::Remove(const BundleId& id) {
  auto it = index_->by_key.find(id);
  if (it == index_->by_key.end()) return false;
  if (auto st = StageRemove(it->second.info); !st) return Failed(st.error());
  ++staged_;
  index_->Erase(it);
  return true;
}

storage::Result<bool> BundleStore::MarkDelivered(const BundleId& id) {
  auto it = index_->by_key.find(id);
  if (it == index_->by_key.end()) return false;
  if (it->second.info.delivered_once) return true;
  if (auto st = StageDelivered(it->second.info); !st) return Failed(st.error());
  ++staged_;
  it->second.info.delivered_once = true;
  return true;
}

storage::Result<std::size_t> BundleStore::ForgetSeenBefore(clock::DtnTime t) {
  std::size_t forgotten = 0;
  auto& by_expiry = index_->seen_by_expiry;
  for (auto it = by_expiry.begin(); it != by_expiry.end() && it->first < t.millis();) {
    if (index_->by_key.contains(it->second)) {  // still stored: its expiry will remove it first
      ++it;
      continue;
    }
    auto seen = index_->seen.find(it->second);
    if (auto st = StageForgetSeen(it->second, seen->second.key); !st) return Failed(st.error());
    ++staged_;
    index_->seen.erase(seen);
    it = by_expiry.erase(it);
    ++forgotten;
  }
  return forgotten;
}

bool BundleStore::SetInFlight(const BundleId& id, bool in_flight) {
  auto it = index_->by_key.find(id);
  if (it == index_->by_key.end() || it->second.info.disposition != BundleDisposition::kForward) return false;
  BundleIndex::Entry& e = it->second;
  if (e.in_flight == in_flight) return true;
  e.in_flight = in_flight;
  if (in_flight) {
    index_->Unqueue(e.info);
  } else {
    index_->queues[e.info.destination.NodeEid()].emplace(BundleIndex::QueueKeyOf(e.info), &e);
  }
  return true;
}

storage::Status BundleStore::SetCounter(std::string_view name, std::uint64_t value) {
  if (auto st = StageCounter(name, value); !st) return Failed(st.error());
  ++staged_;
  auto it = index_->counters.find(name);
  if (it == index_->counters.end()) {
    index_->counters.emplace(std::string(name), value);
  } else {
    it->second = value;
  }
  return {};
}

storage::Result<std::size_t> BundleStore::Commit() {
  // After a failed commit the in-memory view (the index, an implementation's own bookkeeping such
  // as the segment store's live counts) is ahead of the file: a later commit that succeeded would
  // make that mismatch durable-looking. Every later commit fails too, until the owner reopens.
  if (commit_failed_) {
    return std::unexpected(storage::Error{
        storage::Error::Kind::kMisuse,
        "bundle store: an earlier commit failed (" + commit_failed_->message + "); reopen the store", 0});
  }
  if (staged_ == 0) return std::size_t{0};
  if (auto st = DoCommit(); !st) {
    commit_failed_ = st.error();
    return std::unexpected(st.error());
  }
  return std::exchange(staged_, 0);
}

const StoredBundleInfo* BundleStore::Find(const BundleId& id) const {
  auto it = index_->by_key.find(id);
  return it == index_->by_key.end() ? nullptr : &it->second.info;
}

storage::Result<std::vector<std::uint8_t>> BundleStore::ReadBytes(const BundleId& id) const {
  const StoredBundleInfo* info = Find(id);
  if (info == nullptr) {
    return std::unexpected(storage::Error{storage::Error::Kind::kMisuse,
                                          "bundle store: ReadBytes of " + id.ToString() + ", which is not stored", 0});
  }
  return LoadBytes(*info);
}

bool BundleStore::Seen(const BundleId& id) const {
  return index_->seen.contains(id) || index_->by_key.contains(id);
}

void BundleStore::VisitQueue(const Eid& destination_node,
                             const std::function<bool(const StoredBundleInfo&)>& visit) const {
  auto q = index_->queues.find(destination_node);
  if (q == index_->queues.end()) return;
  for (const auto& [k, e] : q->second) {
    if (!visit(e->info)) return;
  }
}

std::vector<Eid> BundleStore::QueuedDestinations() const {
  std::vector<Eid> out;
  out.reserve(index_->queues.size());
  for (const auto& [dest, q] : index_->queues) out.push_back(dest);
  return out;
}

void BundleStore::VisitDeliveries(const Eid& endpoint, const std::function<bool(const StoredBundleInfo&)>& visit) const {
  auto d = index_->deliveries.find(endpoint);
  if (d == index_->deliveries.end()) return;
  for (const auto& [seq, e] : d->second) {
    if (!visit(e->info)) return;
  }
}

std::vector<StoredBundleInfo> BundleStore::ExpiringBefore(clock::DtnTime t, std::size_t limit) const {
  std::vector<StoredBundleInfo> out;
  for (const auto& [k, e] : index_->by_expiry) {
    if (out.size() >= limit || k.first >= t.millis()) break;
    out.push_back(e->info);
  }
  return out;
}

std::optional<clock::DtnTime> BundleStore::EarliestExpiry() const {
  if (index_->by_expiry.empty()) return std::nullopt;
  return clock::DtnTime::FromMillis(index_->by_expiry.begin()->first.first);
}

std::optional<std::uint64_t> BundleStore::Counter(std::string_view name) const {
  auto it = index_->counters.find(name);
  if (it == index_->counters.end()) return std::nullopt;
  return it->second;
}

StoreUsage BundleStore::usage() const {
  return StoreUsage{index_->by_key.size(), index_->bytes, index_->seen.size()};
}

void BundleStore::RestoreBundle(const StoredBundleInfo& info) {
  if (!index_->seen.contains(info.id))
    index_->AddSeen(info.id, info.expires_at, static_cast<std::int64_t>(info.store_seq));
  index_->Insert(info);
}

void BundleStore::RestoreSeen(const BundleId& id, clock::DtnTime expires_at, std::int64_t seen_key) {
  index_->AddSeen(id, expires_at, seen_key);
}

void BundleStore::RestoreCounter(std::string_view name, std::uint64_t value) {
  index_->counters[std::string(name)] = value;
}

// ---- MemoryBundleStore ----

struct MemoryBundleStore::Bytes {
  std::unordered_map<std::uint64_t, std::vector<std::uint8_t>> by_seq;
};

MemoryBundleStore::MemoryBundleStore(StoreLimits limits) : BundleStore(limits), bytes_(std::make_unique<Bytes>()) {}
MemoryBundleStore::~MemoryBundleStore() = default;

storage::Status MemoryBundleStore::StagePut(const StoredBundleInfo& info, std::span<const std::uint8_t> bytes) {
  bytes_->by_seq[info.store_seq].assign(bytes.begin(), bytes.end());
  return {};
}
storage::Status MemoryBundleStore::StageRemove(const StoredBundleInfo& info) {
  bytes_->by_seq.erase(info.store_seq);
  return {};
}
storage::Status MemoryBundleStore::StageDelivered(const StoredBundleInfo&) { return {}; }
storage::Status MemoryBundleStore::StageForgetSeen(const BundleId&, std::int64_t) { return {}; }
storage::Status MemoryBundleStore::StageCounter(std::string_view, std::uint64_t) { return {}; }
storage::Result<std::vector<std::uint8_t>> MemoryBundleStore::LoadBytes(const StoredBundleInfo& info) const {
  auto it = bytes_->by_seq.find(info.store_seq);
  if (it == bytes_->by_seq.end()) {
    std::fprintf(stderr, "bundle store: no bytes for %s\n", info.id.ToString().c_str());
    std::abort();
  }
  return it->second;
}
storage::Status MemoryBundleStore::DoCommit() {
  ++commits_;
  return {};
}

}  // namespace ics::dtn
