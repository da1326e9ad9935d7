// Routing: contact graph routing (CGR) over a ContactPlan, static routes for small deployments
// without a plan, and a Router that tries the first and falls back to the second.
//
// CGR here is the earliest-arrival search of ION's CGR and of the CGR literature (Fraire et al.,
// "Routing in the Space Internet", 2021): Dijkstra's algorithm with contacts as vertices.
// A bundle of `size` bytes ready at node N at time r can use a contact C from N when
//   departure = max(r, C.start),  tx = ceil(size / C.rate) (in ms),
//   departure < C.end and departure + tx <= C.end   (it is fully sent before the contact ends);
// it then arrives at C.to at departure + tx + OWLT, where OWLT is the plan's OwltAt(C.from, C.to,
// departure). When a shorter range starts later within the contact, the departure is the range
// change that gives the earliest arrival (waiting for it), so a later-ready bundle never arrives
// earlier (FIFO) and the search is exact. As in ION, a contact with no range covering the
// departure is unusable (unless RouteOptions::owlt_if_no_range says otherwise). Not modelled: contact
// capacity already booked by other bundles (no volume accounting), confidence, and contact overlap at one
// transmitter. Without a binding hop limit the route found has the earliest possible arrival.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <expected>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "dtn/contact_plan.h"

namespace ics::dtn {

struct RouteHop {
  Contact contact;
  std::size_t contact_index = 0;  // in ContactPlan::contacts()
  DtnTime departure;              // transmission starts
  DtnTime arrival;                // last byte received at contact.to
  Duration owlt{0};
};

struct Route {
  std::vector<RouteHop> hops;  // empty when from == to (local delivery)
  NodeNumber next_hop = 0;     // hops.front().contact.to, or the destination when hops is empty
  DtnTime arrival;             // at the destination
  Duration delay{0};           // arrival - the time the search started
  // The sum of the hops' OWLTs (the rest of delay is waiting and transmission).
  Duration OwltSum() const;
};

struct RouteOptions {
  // Never used as relays or receivers (e.g. a neighbour that just failed to take a bundle).
  // Excluding the destination means no route.
  std::vector<NodeNumber> excluded_nodes;
  // Indices in ContactPlan::contacts() never used (e.g. the contact a failed hop was on).
  std::vector<std::size_t> excluded_contacts;
  // At most this many hops. With a limit that binds, the search keeps, per contact, the
  // earliest arrival only, so it may miss a slower route with fewer hops.
  std::size_t hops_max = 32;
  // OWLT assumed for a contact that no range covers; nullopt (ION's behaviour): such a contact
  // is unusable.
  std::optional<Duration> owlt_if_no_range;
};

// Transmission time of size_bytes at rate_bytes_per_s, rounded up to the millisecond; nullopt
// when it exceeds kPlanSecondsMax (no contact is that long). REQUIRES: rate_bytes_per_s > 0.
std::optional<Duration> TransmissionTime(std::uint64_t size_bytes, std::uint64_t rate_bytes_per_s);

// An array of n elements of a trivial type, all zero at first, from calloc: a large one is
// fresh zero pages from the kernel, so it costs nothing until a page is first touched (a route
// search touches a few entries of arrays as long as the plan, and a node rebuilt after a crash
// or a sleep starts with a fresh workspace). Copies copy the elements.
template <typename T>
class ZeroedArray {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  ZeroedArray() = default;
  ZeroedArray(const ZeroedArray& other) { CopyFrom(other); }
  ZeroedArray& operator=(const ZeroedArray& other) {
    if (this != &other) CopyFrom(other);
    return *this;
  }
  ZeroedArray(ZeroedArray&&) noexcept = default;
  ZeroedArray& operator=(ZeroedArray&&) noexcept = default;
  // Discards the contents; n zero elements. Aborts when out of memory.
  void Reset(std::size_t n) {
    data_.reset();
    size_ = 0;
    if (n == 0) return;
    data_.reset(static_cast<T*>(std::calloc(n, sizeof(T))));
    if (!data_) {
      std::fprintf(stderr, "ics::dtn ZeroedArray: out of memory for %zu elements\n", n);
      std::abort();
    }
    size_ = n;
  }
  std::size_t size() const { return size_; }
  T& operator[](std::size_t i) { return data_.get()[i]; }
  const T& operator[](std::size_t i) const { return data_.get()[i]; }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  void CopyFrom(const ZeroedArray& other) {
    Reset(other.size_);
    if (size_ != 0) std::memcpy(data_.get(), other.data_.get(), size_ * sizeof(T));
  }
  std::unique_ptr<T, Free> data_;
  std::size_t size_ = 0;
};

// Reusable search buffers, so that a caller routing many bundles allocates only when the plan
// grows. Not thread-safe: one per thread. ForThisThread() is the one the Router and the
// PathBoundsCache use: a process that routes for several nodes on one thread (the replayer runs
// a dozen Nodes and a coordinator's policy) keeps one plan-sized array warm in memory instead of
// one per router, each touched sparsely.
class RouteWorkspace {
 public:
  RouteWorkspace() = default;
  static RouteWorkspace& ForThisThread();

  // A search's priority queue entry (public for the search's comparator only): a contact queued
  // with its arrival (kind kContact, value = contact index), or a node's cursor keyed by the
  // next contact's earliest departure (kind kCursor, value = cursor index, i.e. expansion order).
  struct HeapEntry {
    static constexpr std::uint8_t kCursor = 0;  // before contacts of an equal key
    static constexpr std::uint8_t kContact = 1;
    std::int64_t key_ms = 0;
    std::uint8_t kind = kContact;
    std::uint32_t value = 0;
  };

 private:
  // The contacts of an expanded node not offered yet: contacts()[next, end).
  struct Cursor {
    std::size_t next = 0;
    std::size_t end = 0;
    DtnTime ready;
    std::uint32_t hops = 0;
    std::int32_t predecessor = -1;
  };
  // What a search knows of one contact of the plan, together (a search touches a few contacts
  // scattered over a plan-sized array: one cache line each rather than one per field). arrival,
  // departure, predecessor and hops mean something only while state is queued or settled.
  struct Slot {
    std::int64_t arrival_ms;
    std::int64_t departure_ms;
    std::int32_t predecessor;
    std::uint32_t hops;
    std::uint8_t state;     // 0 unseen, 1 queued, 2 settled, 3 excluded
    std::uint8_t expanded;  // by index of a node's first contact: its contacts offered
  };
  friend std::optional<Route> FindRoute(const ContactPlan&, NodeNumber, NodeNumber, DtnTime, std::uint64_t,
                                        DtnTime, const RouteOptions&, RouteWorkspace&);
  // At least one slot per contact of the plan searched; it grows to the largest plan met and
  // never shrinks, so searches over plans of different sizes do not reallocate it in turn.
  ZeroedArray<Slot> slots_;
  std::vector<HeapEntry> heap_;
  std::vector<Cursor> cursors_;
  // Indices whose slot the last search changed: the next search resets only these.
  std::vector<std::uint32_t> touched_;
};

// The earliest-arrival route from `from` to `to` for a bundle of size_bytes ready at `at`,
// arriving no later than `expiry`; nullopt when there is none (the bundle waits in the store).
// from == to gives a route with no hops arriving at `at`.
// Cost: O(V log V) time for the V contacts the search offers the bundle (those leaving a node
// it reaches that have not ended when it is ready there and that start before both the answer's
// arrival and the expiry), plus O(log C) per node reached for C contacts in the plan: it does
// not grow with the plan's length before `at` or after the arrival. O(C) memory in the
// workspace, allocated when the workspace first meets a plan of that size.
std::optional<Route> FindRoute(const ContactPlan& plan, NodeNumber from, NodeNumber to, DtnTime at,
                               std::uint64_t size_bytes, DtnTime expiry, const RouteOptions& options,
                               RouteWorkspace& workspace);
// As above with a fresh workspace.
std::optional<Route> FindRoute(const ContactPlan& plan, NodeNumber from, NodeNumber to, DtnTime at,
                               std::uint64_t size_bytes, DtnTime expiry, const RouteOptions& options = {});

// A memo of the steps of PathBoundsBetween's sweeps (dtn/contact_plan.h), for a caller that
// bounds the same paths again and again as time moves on (coordinator::PlanPolicy, once per peer
// every few hours, over a day ahead). A step is a pure function of (plan, source, destination,
// size, departure): the earliest-arrival route's light time, delay and latest departure. A sweep
// started later than a previous one finds its first route afresh, and then, after the first
// range or contact change, departs at the very instants the previous sweep did, where the memo
// answers; so the result is exactly PathBoundsBetween's without the memo, and a query costs
// about two route searches instead of one per pass in the horizon.
// REQUIRES: one plan per cache, not modified while the cache holds steps for it (Clear() after a
// change). Not thread-safe. Holds at most kStepsMax steps (cleared when full); a sweep drops the
// steps of its own path that depart before its start (callers move forward in time).
class PathBoundsCache {
 public:
  static constexpr std::size_t kStepsMax = 100'000;
  void Clear() {
    paths_.clear();
    size_ = 0;
  }
  std::size_t size() const { return size_; }
  std::uint64_t hits() const { return hits_; }
  std::uint64_t misses() const { return misses_; }

 private:
  friend std::expected<clock::PathBounds, std::string> PathBoundsBetween(const ContactPlan&, NodeNumber,
                                                                         NodeNumber, DtnTime, DtnTime,
                                                                         std::uint64_t, PathBoundsCache&);
  struct Path {
    NodeNumber source = 0;
    NodeNumber destination = 0;
    std::uint64_t size_bytes = 0;
    auto operator<=>(const Path&) const = default;
  };
  struct Step {
    bool found = false;  // false: no route at this departure
    bool local = false;  // source == destination: no hops
    Duration owlt{0};    // the route's OwltSum()
    Duration delay{0};   // arrival - departure
    DtnTime latest;      // LatestDeparture (not below the departure)
  };
  struct Entry {
    std::int64_t departure_ms = 0;
    Step step;
  };
  // Per path, its steps sorted by departure (a sweep appends them in that order; a later sweep
  // drops the ones before its start): a binary search or a walk instead of a tree per step.
  std::map<Path, std::vector<Entry>> paths_;
  std::size_t size_ = 0;  // steps in paths_
  std::uint64_t hits_ = 0;
  std::uint64_t misses_ = 0;
};

// PathBoundsBetween (dtn/contact_plan.h) with a memo of its steps: the same result.
std::expected<clock::PathBounds, std::string> PathBoundsBetween(const ContactPlan& plan, NodeNumber a,
                                                                NodeNumber b, DtnTime from, DtnTime to,
                                                                std::uint64_t size_bytes,
                                                                PathBoundsCache& cache);

// Destination -> next hop, with an optional default route. For deployments without a plan
// (a LAN, a lab) where every link is always up.
class StaticRoutes {
 public:
  void Set(NodeNumber destination, NodeNumber next_hop) { routes_[destination] = next_hop; }
  void Remove(NodeNumber destination) { routes_.erase(destination); }
  void SetDefault(NodeNumber next_hop) { default_ = next_hop; }
  void ClearDefault() { default_.reset(); }
  // The route for the destination, else the default route, else nullopt.
  std::optional<NodeNumber> NextHop(NodeNumber destination) const;
  bool empty() const { return routes_.empty() && !default_; }

 private:
  std::map<NodeNumber, NodeNumber> routes_;
  std::optional<NodeNumber> default_;
};

// Parses static routes, one per line: `route DEST NEXT_HOP` or `default NEXT_HOP`, with `#`
// comments and blank lines. Errors name the line and column, as ParseContactPlan's do.
std::expected<StaticRoutes, PlanError> ParseStaticRoutes(std::string_view text, std::string_view source_name);

enum class RouteSource { kLocal, kContactGraph, kStatic };
std::string_view RouteSourceName(RouteSource source);  // "local", "contact-graph", "static"

struct RoutingDecision {
  NodeNumber next_hop = 0;
  RouteSource source = RouteSource::kStatic;
  std::optional<Route> route;  // set when source is kContactGraph or kLocal
};

// When the Router consults its static routes.
enum class StaticFallback {
  // Only for destinations the plan has no contact into (so CGR's "not before expiry" verdict
  // for a destination the plan knows keeps the bundle stored, as DESIGN.md §4 asks).
  kWhenUnknownToPlan,
  // Whenever CGR finds no route.
  kWhenNoRoute,
};

// The next hop for bundles leaving `local`: CGR over the plan (if any), then static routes.
// Caches CGR answers per (destination, size): an answer found at time t stays valid at t' for
// t <= t' <= the route's first departure, since until then the same route leaves at the same
// moment and no route can arrive earlier than it did from t (the earliest arrival never
// decreases as the departure time grows); a "no route" answer found at t for expiry E stays valid
// for t' >= t and expiries <= E. Calls with exclusions bypass the cache. The cache holds at most
// kCacheEntriesMax entries and is cleared when full or when SetPlan is called.
// Not thread-safe (one per Node). The plan must outlive the Router.
class Router {
 public:
  static constexpr std::size_t kCacheEntriesMax = 4096;

  Router(NodeNumber local, const ContactPlan* plan, StaticRoutes static_routes,
         StaticFallback fallback = StaticFallback::kWhenUnknownToPlan);
  void SetPlan(const ContactPlan* plan);
  const StaticRoutes& static_routes() const { return static_; }

  // nullopt: no next hop now (the bundle stays stored and is routed again later, e.g. when a
  // contact starts or the plan changes).
  std::optional<RoutingDecision> Decide(NodeNumber destination, DtnTime now, std::uint64_t size_bytes,
                                        DtnTime expiry, const RouteOptions& options = {});

  // Decide(destination, now, size_bytes, expiry)'s next hop (same answer, same cache), without
  // copying the route out: the node's dispatch asks this for every queued bundle it looks at.
  std::optional<NodeNumber> NextHop(NodeNumber destination, DtnTime now, std::uint64_t size_bytes,
                                    DtnTime expiry);

  std::uint64_t cache_hits() const { return cache_hits_; }
  std::uint64_t cache_misses() const { return cache_misses_; }

 private:
  struct CacheKey {
    NodeNumber destination;
    std::uint64_t size_bytes;
    bool operator==(const CacheKey&) const = default;
  };
  struct CacheKeyHash {
    std::size_t operator()(const CacheKey& k) const {
      return std::hash<std::uint64_t>()(k.destination * 0x9E3779B97F4A7C15ull ^ k.size_bytes);
    }
  };
  struct CacheEntry {
    DtnTime computed_at;
    DtnTime expiry;              // the expiry searched with (for a "no route" answer)
    std::optional<Route> route;  // nullopt: no route before `expiry`
  };
  std::optional<Route> Cgr(NodeNumber destination, DtnTime now, std::uint64_t size_bytes, DtnTime expiry,
                           const RouteOptions& options);
  // Cgr with the default options: the cached (or newly searched and cached) route, valid until
  // the next call; null when there is none before `expiry`.
  const Route* CachedRoute(NodeNumber destination, DtnTime now, std::uint64_t size_bytes, DtnTime expiry);
  bool PlanKnows(NodeNumber destination) const { return plan_->HasContactsTo(destination); }

  NodeNumber local_;
  const ContactPlan* plan_;
  StaticRoutes static_;
  StaticFallback fallback_;
  std::unordered_map<CacheKey, CacheEntry, CacheKeyHash> cache_;
  std::uint64_t cache_hits_ = 0;
  std::uint64_t cache_misses_ = 0;
};

}  // namespace ics::dtn
