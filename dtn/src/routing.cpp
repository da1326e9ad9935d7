#include "dtn/routing.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <tuple>

namespace ics::dtn {
namespace {

constexpr std::int64_t kUnreached = std::numeric_limits<std::int64_t>::max();
enum State : std::uint8_t { kUnseen = 0, kQueued = 1, kSettled = 2, kExcluded = 3 };

bool Contains(const std::vector<NodeNumber>& nodes, NodeNumber n) {
  return std::find(nodes.begin(), nodes.end(), n) != nodes.end();
}

// Min-heap order on (key, kind, value); see RouteWorkspace::HeapEntry. A function object, not
// a function pointer, so the heap operations inline it.
struct HeapAfterOrder {
  bool operator()(const RouteWorkspace::HeapEntry& x, const RouteWorkspace::HeapEntry& y) const {
    return std::tie(x.key_ms, x.kind, x.value) > std::tie(y.key_ms, y.kind, y.value);
  }
};
constexpr HeapAfterOrder HeapAfter;

}  // namespace

Duration Route::OwltSum() const {
  Duration sum{0};
  for (const RouteHop& hop : hops) sum += hop.owlt;
  return sum;
}

std::optional<Duration> TransmissionTime(std::uint64_t size_bytes, std::uint64_t rate_bytes_per_s) {
  if (rate_bytes_per_s == 0) {
    std::fprintf(stderr, "ics::dtn TransmissionTime: rate must be > 0\n");
    std::abort();
  }
  std::uint64_t seconds = size_bytes / rate_bytes_per_s;
  if (seconds > static_cast<std::uint64_t>(kPlanSecondsMax)) return std::nullopt;
  const std::uint64_t rem = size_bytes % rate_bytes_per_s;
  if (rate_bytes_per_s <=
      std::numeric_limits<std::uint64_t>::max() / 1000 - 1) {  // the common case: no overflow
    const std::uint64_t rem_ms = (rem * 1000 + rate_bytes_per_s - 1) / rate_bytes_per_s;
    return Duration(static_cast<std::int64_t>(seconds) * 1000 + static_cast<std::int64_t>(rem_ms));
  }
  // remainder * 1000 may not fit 64 bits when the rate is above 1.8e16 bytes/s.
  __extension__ using U128 = unsigned __int128;
  U128 rem_ms =
      (static_cast<U128>(size_bytes % rate_bytes_per_s) * 1000 + rate_bytes_per_s - 1) / rate_bytes_per_s;
  return Duration(static_cast<std::int64_t>(seconds) * 1000 + static_cast<std::int64_t>(rem_ms));
}

RouteWorkspace& RouteWorkspace::ForThisThread() {
  thread_local RouteWorkspace workspace;
  return workspace;
}

std::optional<Route> FindRoute(const ContactPlan& plan, NodeNumber from, NodeNumber to, DtnTime at,
                               std::uint64_t size_bytes, DtnTime expiry, const RouteOptions& options,
                               RouteWorkspace& ws) {
  using Entry = RouteWorkspace::HeapEntry;
  if (from == to) return Route{{}, to, at, Duration(0)};
  if (at > expiry || Contains(options.excluded_nodes, to) || options.hops_max == 0) return std::nullopt;

  const std::vector<Contact>& contacts = plan.contacts();
  const std::size_t n = contacts.size();
  if (n > std::numeric_limits<std::uint32_t>::max()) {
    std::fprintf(stderr, "ics::dtn FindRoute: plan has more than 2^32 contacts\n");
    std::abort();
  }
  // Resetting only what the last search touched keeps the cost of a search independent of the
  // plan's size (a year-long plan has hundreds of thousands of contacts; a search visits a few).
  if (ws.slots_.size() < n) {
    ws.slots_.Reset(n);  // all unseen
  } else {
    for (std::uint32_t i : ws.touched_) ws.slots_[i] = RouteWorkspace::Slot{};
  }
  ws.touched_.clear();
  ws.heap_.clear();
  ws.cursors_.clear();
  for (std::size_t index : options.excluded_contacts) {
    if (index < n) {
      ws.slots_[index].state = kExcluded;
      ws.touched_.push_back(static_cast<std::uint32_t>(index));
    }
  }

  // The earliest arrival at the destination queued so far: an upper bound on the answer; and of
  // the contacts queued with it, the lowest index (the one that pops first: the heap's order is
  // (key, kind, value), total since no entry is queued twice).
  std::int64_t best_ms = kUnreached;
  std::size_t best_index = std::numeric_limits<std::size_t>::max();
  // A contact starting after the expiry cannot deliver in time (arrival >= departure >= start).
  const std::int64_t start_limit_ms = expiry.millis() < kUnreached ? expiry.millis() + 1 : kUnreached;
  auto push = [&](Entry e) {
    ws.heap_.push_back(e);
    std::push_heap(ws.heap_.begin(), ws.heap_.end(), HeapAfter);
  };

  std::uint64_t tx_rate = 0;  // no contact has rate 0 (the plan checks it)
  std::optional<Duration> tx_of_rate;
  // Offers contact `index` to a bundle ready at its sending node at `ready` after `hops` hops.
  auto relax = [&](std::size_t index, DtnTime ready, std::uint32_t hops, std::int32_t predecessor) {
    RouteWorkspace::Slot& slot = ws.slots_[index];
    if (slot.state == kSettled || slot.state == kExcluded) return;
    const Contact& c = contacts[index];
    if (c.from == c.to || c.to == from || Contains(options.excluded_nodes, c.to)) return;
    // A plan has few distinct rates: the last one's transmission time saves two divisions.
    if (c.rate_bytes_per_s != tx_rate) {
      tx_rate = c.rate_bytes_per_s;
      tx_of_rate = TransmissionTime(size_bytes, c.rate_bytes_per_s);
    }
    const std::optional<Duration> tx = tx_of_rate;
    if (!tx) return;
    // Departing at once is best unless a shorter range starts later in the contact: then waiting
    // for it can arrive earlier. Trying each range change keeps arrival a non-decreasing function
    // of `ready` (FIFO), which is what makes Dijkstra's search exact.
    std::optional<DtnTime> departure;
    DtnTime arrival = DtnTime::Max();
    for (DtnTime d = std::max(ready, c.start); d < c.end && *tx <= c.end - d;) {
      const ContactPlan::RangeState range = plan.ContactRangeStateAt(index, d);
      std::optional<Duration> owlt = range.owlt;
      if (!owlt) owlt = options.owlt_if_no_range;
      if (owlt && d + *tx + *owlt < arrival) {
        departure = d;
        arrival = d + *tx + *owlt;
      }
      const std::optional<DtnTime>& change = range.next_change;
      if (!change || *change + *tx >= arrival) break;  // OWLT >= 0: no later departure can beat it
      d = *change;
    }
    // An unseen contact's arrival is unset (unreached); a queued one's is the best so far.
    if (!departure || arrival > expiry) return;
    // An entry that would pop after the best destination contact queued is never popped: the
    // search returns at that one (or at a better one queued later, which pops earlier still).
    // Not queuing it changes nothing but the work.
    if (arrival.millis() > best_ms || (arrival.millis() == best_ms && index > best_index)) return;
    if (slot.state == kQueued && arrival.millis() >= slot.arrival_ms) return;
    slot.arrival_ms = arrival.millis();
    slot.departure_ms = departure->millis();
    slot.predecessor = predecessor;
    slot.hops = hops;
    slot.state = kQueued;
    ws.touched_.push_back(static_cast<std::uint32_t>(index));
    if (c.to == to) {
      best_ms = arrival.millis();  // not above best_ms: the test above returned otherwise
      best_index = index;
    }
    push(Entry{arrival.millis(), Entry::kContact, static_cast<std::uint32_t>(index)});
  };

  // A node's contacts are offered lazily, in start order, through a cursor in the heap keyed by
  // the next contact's earliest possible departure max(ready, start), a lower bound on its
  // arrival. Cursors pop before contacts of an equal key, and among themselves in the order the
  // nodes were expanded, so every contact is offered, by the same nodes in the same order, before
  // anything that could arrive after it is settled: the search settles what the eager search (all
  // of a node's contacts offered at once) settles, but looks only at the contacts that start
  // before the answer's arrival, not at the rest of the plan.
  // Contacts that ended by `ready` are skipped by binary search (ContactPlan::ContactsFromNotEndedBy),
  // then, behind a long contact, by blocks (ContactPlan::NextNotEndedBy).
  // A cursor's new entry that orders before everything in the heap is the very next one popped:
  // it waits here instead of going through the heap (most of a search's entries are cursors
  // offering one contact after another). The order of the search is unchanged.
  std::optional<Entry> next;
  auto advance = [&](std::uint32_t cursor_id) {
    RouteWorkspace::Cursor& cur = ws.cursors_[cursor_id];
    if (cur.next < cur.end && contacts[cur.next].end <= cur.ready) {
      cur.next = plan.NextNotEndedBy(cur.next, cur.end, cur.ready);
    }
    // Sorted by start: a contact opening after the best arrival found so far cannot beat it.
    if (cur.next >= cur.end || contacts[cur.next].start.millis() >= std::min(best_ms, start_limit_ms)) return;
    const Entry e{std::max(cur.ready, contacts[cur.next].start).millis(), Entry::kCursor, cursor_id};
    if (!next && (ws.heap_.empty() || HeapAfter(ws.heap_.front(), e))) {
      next = e;
    } else {
      push(e);
    }
  };
  auto expand = [&](NodeNumber node, DtnTime ready, std::uint32_t hops, std::int32_t predecessor) {
    ws.cursors_.push_back(RouteWorkspace::Cursor{plan.ContactsFromNotEndedBy(node, ready),
                                                 plan.ContactsFromEnd(node), ready, hops, predecessor});
    advance(static_cast<std::uint32_t>(ws.cursors_.size() - 1));
  };

  expand(from, at, 1, -1);
  while (next || !ws.heap_.empty()) {
    Entry top;
    if (next) {
      top = *next;
      next.reset();
    } else {
      std::pop_heap(ws.heap_.begin(), ws.heap_.end(), HeapAfter);
      top = ws.heap_.back();
      ws.heap_.pop_back();
    }
    if (top.kind == Entry::kCursor) {
      RouteWorkspace::Cursor& cur = ws.cursors_[top.value];
      if (contacts[cur.next].start.millis() >= std::min(best_ms, start_limit_ms)) continue;
      const std::size_t i = cur.next++;
      relax(i, cur.ready, cur.hops, cur.predecessor);
      advance(top.value);
      continue;
    }
    const std::int64_t arrival_ms = top.key_ms;
    const std::uint32_t index = top.value;
    RouteWorkspace::Slot& slot = ws.slots_[index];
    if (slot.state != kQueued || arrival_ms != slot.arrival_ms) continue;  // stale entry
    slot.state = kSettled;
    const Contact& c = contacts[index];
    if (c.to == to) {
      Route route;
      std::size_t hop_count = slot.hops;
      route.hops.resize(hop_count);
      std::int32_t cur = static_cast<std::int32_t>(index);
      for (std::size_t k = hop_count; k-- > 0;) {
        const Contact& hc = contacts[static_cast<std::size_t>(cur)];
        const RouteWorkspace::Slot& hop_slot = ws.slots_[static_cast<std::size_t>(cur)];
        DtnTime departure = DtnTime::FromMillis(hop_slot.departure_ms);
        DtnTime arrival = DtnTime::FromMillis(hop_slot.arrival_ms);
        Duration tx = *TransmissionTime(size_bytes, hc.rate_bytes_per_s);
        route.hops[k] =
            RouteHop{hc, static_cast<std::size_t>(cur), departure, arrival, arrival - departure - tx};
        cur = hop_slot.predecessor;
      }
      route.next_hop = route.hops.front().contact.to;
      route.arrival = DtnTime::FromMillis(arrival_ms);
      route.delay = route.arrival - at;
      return route;
    }
    const std::uint32_t hops = slot.hops;
    if (hops >= options.hops_max) continue;
    // Links are FIFO (see the header), so the first, earliest arrival at a node that may still
    // add hops offers every contact out of it its earliest departure: later arrivals at the same
    // node cannot improve any of them. Expanding each node once keeps a search O(C log C).
    const std::size_t begin = plan.ContactsFromBegin(c.to);
    if (begin >= n || contacts[begin].from != c.to || ws.slots_[begin].expanded) continue;
    ws.slots_[begin].expanded = 1;
    ws.touched_.push_back(static_cast<std::uint32_t>(begin));
    expand(c.to, DtnTime::FromMillis(arrival_ms), hops + 1, static_cast<std::int32_t>(index));
  }
  return std::nullopt;
}

std::optional<Route> FindRoute(const ContactPlan& plan, NodeNumber from, NodeNumber to, DtnTime at,
                               std::uint64_t size_bytes, DtnTime expiry, const RouteOptions& options) {
  RouteWorkspace workspace;
  return FindRoute(plan, from, to, at, size_bytes, expiry, options, workspace);
}

// ---- Static routes ----------------------------------------------------------------------

std::optional<NodeNumber> StaticRoutes::NextHop(NodeNumber destination) const {
  if (auto it = routes_.find(destination); it != routes_.end()) return it->second;
  return default_;
}

std::expected<StaticRoutes, PlanError> ParseStaticRoutes(std::string_view text,
                                                         std::string_view source_name) {
  StaticRoutes routes;
  int line_no = 0;
  std::size_t pos = 0;
  while (pos < text.size()) {
    std::size_t nl = text.find('\n', pos);
    std::size_t line_end = nl == std::string_view::npos ? text.size() : nl;
    std::string_view line = text.substr(pos, line_end - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    ++line_no;
    auto fail = [&](std::size_t column0, std::string message) {
      return std::unexpected(
          PlanError{std::string(source_name), line_no, static_cast<int>(column0) + 1, std::move(message)});
    };
    if (static_cast<std::size_t>(line_no) > kPlanLinesMax) return fail(0, "too many lines");
    if (line.size() > kPlanLineLengthMax) return fail(kPlanLineLengthMax, "line too long");
    // Tokens with their 0-based columns.
    std::vector<std::pair<std::string_view, std::size_t>> tokens;
    for (std::size_t i = 0; i < line.size() && tokens.size() < 4;) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      if (i >= line.size() || line[i] == '#') break;
      std::size_t begin = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
      tokens.emplace_back(line.substr(begin, i - begin), begin);
    }
    if (tokens.empty()) continue;
    auto node = [&](std::size_t k) -> std::expected<NodeNumber, PlanError> {
      if (k >= tokens.size()) {
        const auto& last = tokens.back();
        return fail(last.second + last.first.size(), "missing node number");
      }
      std::string_view t = tokens[k].first;
      NodeNumber value = 0;
      auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
      if (ec != std::errc() || ptr != t.data() + t.size() || value == 0) {
        return fail(tokens[k].second, fmt::format("node number must be an integer > 0 (got '{}')", t));
      }
      return value;
    };
    std::size_t expected_tokens = 0;
    if (tokens[0].first == "route") {
      auto dest = node(1);
      if (!dest) return std::unexpected(dest.error());
      auto hop = node(2);
      if (!hop) return std::unexpected(hop.error());
      routes.Set(*dest, *hop);
      expected_tokens = 3;
    } else if (tokens[0].first == "default") {
      auto hop = node(1);
      if (!hop) return std::unexpected(hop.error());
      routes.SetDefault(*hop);
      expected_tokens = 2;
    } else {
      return fail(tokens[0].second,
                  fmt::format("unknown command '{}': expected 'route' or 'default'", tokens[0].first));
    }
    if (tokens.size() > expected_tokens) {
      return fail(tokens[expected_tokens].second,
                  fmt::format("unexpected '{}' after the last field", tokens[expected_tokens].first));
    }
  }
  return routes;
}

// ---- Router -----------------------------------------------------------------------------

std::string_view RouteSourceName(RouteSource source) {
  switch (source) {
    case RouteSource::kLocal:
      return "local";
    case RouteSource::kContactGraph:
      return "contact-graph";
    case RouteSource::kStatic:
      return "static";
  }
  return "?";
}

Router::Router(NodeNumber local, const ContactPlan* plan, StaticRoutes static_routes, StaticFallback fallback)
    : local_(local), plan_(nullptr), static_(std::move(static_routes)), fallback_(fallback) {
  SetPlan(plan);
}

void Router::SetPlan(const ContactPlan* plan) {
  plan_ = plan;
  cache_.clear();
}

const Route* Router::CachedRoute(NodeNumber destination, DtnTime now, std::uint64_t size_bytes,
                                 DtnTime expiry) {
  CacheKey key{destination, size_bytes};
  auto it = cache_.find(key);
  if (it != cache_.end() && now >= it->second.computed_at) {
    const CacheEntry& entry = it->second;
    if (entry.route && now <= entry.route->hops.front().departure) {
      ++cache_hits_;
      if (entry.route->arrival > expiry) return nullptr;  // the earliest arrival is too late
      return &*entry.route;
    }
    if (!entry.route && expiry <= entry.expiry) {
      ++cache_hits_;
      return nullptr;
    }
  }
  ++cache_misses_;
  std::optional<Route> route = FindRoute(*plan_, local_, destination, now, size_bytes, expiry, RouteOptions{},
                                         RouteWorkspace::ForThisThread());
  if (cache_.size() >= kCacheEntriesMax) {
    cache_.clear();
    it = cache_.end();
  }
  if (it != cache_.end()) {
    it->second = CacheEntry{now, expiry, std::move(route)};
  } else {
    it = cache_.emplace(key, CacheEntry{now, expiry, std::move(route)}).first;
  }
  return it->second.route ? &*it->second.route : nullptr;
}

std::optional<Route> Router::Cgr(NodeNumber destination, DtnTime now, std::uint64_t size_bytes,
                                 DtnTime expiry, const RouteOptions& options) {
  static const RouteOptions kDefaults;
  bool cacheable = options.excluded_nodes.empty() && options.excluded_contacts.empty() &&
                   options.hops_max == kDefaults.hops_max &&
                   options.owlt_if_no_range == kDefaults.owlt_if_no_range;
  if (!cacheable)
    return FindRoute(*plan_, local_, destination, now, size_bytes, expiry, options,
                     RouteWorkspace::ForThisThread());
  const Route* cached = CachedRoute(destination, now, size_bytes, expiry);
  if (cached == nullptr) return std::nullopt;
  Route route = *cached;
  route.delay = route.arrival - now;
  return route;
}

std::optional<NodeNumber> Router::NextHop(NodeNumber destination, DtnTime now, std::uint64_t size_bytes,
                                          DtnTime expiry) {
  if (destination == local_) return local_;
  bool try_static = plan_ == nullptr;
  if (plan_ != nullptr) {
    if (const Route* route = CachedRoute(destination, now, size_bytes, expiry)) return route->next_hop;
    try_static = fallback_ == StaticFallback::kWhenNoRoute || !PlanKnows(destination);
  }
  if (try_static) return static_.NextHop(destination);
  return std::nullopt;
}

std::optional<RoutingDecision> Router::Decide(NodeNumber destination, DtnTime now, std::uint64_t size_bytes,
                                              DtnTime expiry, const RouteOptions& options) {
  if (destination == local_)
    return RoutingDecision{local_, RouteSource::kLocal, Route{{}, local_, now, Duration(0)}};
  bool try_static = plan_ == nullptr;
  if (plan_ != nullptr) {
    if (std::optional<Route> route = Cgr(destination, now, size_bytes, expiry, options)) {
      NodeNumber next = route->next_hop;
      return RoutingDecision{next, RouteSource::kContactGraph, std::move(route)};
    }
    try_static = fallback_ == StaticFallback::kWhenNoRoute || !PlanKnows(destination);
  }
  if (try_static) {
    std::optional<NodeNumber> next = static_.NextHop(destination);
    if (next && !Contains(options.excluded_nodes, *next))
      return RoutingDecision{*next, RouteSource::kStatic, {}};
  }
  return std::nullopt;
}

}  // namespace ics::dtn
