// The replay engine. Everything that influences the outcome is ordered: the event queue by
// (true time, sequence), nodes by their index in the scenario, links by (from, to), maps by key;
// randomness comes from one std::mt19937_64 seeded with the run's seed, drawn in event order.
#include "scenarios/replay.h"

#include <stdlib.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <new>
#include <random>
#include <set>
#include <stop_token>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "coordinator/lease_core.h"
#include "coordinator/lease_log.h"
#include "coordinator/plan_policy.h"
#include "coordinator/services.h"
#include "coordinator/sqlite_lease_log.h"
#include "dtn/bundle_store.h"
#include "dtn/contact_plan.h"
#include "dtn/node.h"
#include "dtn/sqlite_bundle_store.h"
#include "rover_agent/agent_core.h"
#include "rover_agent/agent_store.h"
#include "rover_agent/guard_core.h"
#include "rover_agent/guard_store.h"
#include "timeline.h"

// Events are built with designated initializers naming only the fields their kind uses.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace ics::scenarios {
namespace {

using coordinator::FencingToken;
using coordinator::ResourceName;
using json = nlohmann::ordered_json;

constexpr std::int64_t kPpb = 1'000'000'000;
// --stores sqlite: real SQLite files in a temp directory that the run deletes, so no fsync (the
// recovery paths read what the stores wrote; surviving a power cut is not what is simulated).
const rover_agent::SqliteStoreOptions kScratchStores{rover_agent::StoreDurability::kNone};
// Bulk data ([[bulk]]): sent from and to ipn:N.66, split into bundles of at most kBulkChunkBytes
// (a 25 MB science file is above the codec's payload limit, and a 64 KiB bundle holds a 256 kbit/s
// link for 2 s, the most a lease message waits behind one), living kBulkLifetime.
constexpr std::uint64_t kBulkService = 66;
constexpr std::size_t kBulkChunkBytes = 64 * 1024;
constexpr Duration kBulkLifetime = std::chrono::hours(24);
// 128-bit intermediates: (true span in ms) x (drift in ppb) overflows 64 bits beyond ~100 days at
// 1000 ppm.
__extension__ typedef __int128 Int128;

// A node's local clock: piecewise linear in true time, never going backwards.
struct SimClock {
  DtnTime anchor_true;
  DtnTime anchor_local;
  std::int64_t drift_ppb = 0;
  DtnTime floor_local;  // a backward step holds the clock here until it catches up

  DtnTime Raw(DtnTime t) const {
    const std::int64_t d = (t - anchor_true).count();
    const std::int64_t ad = d < 0 ? -d : d, ap = drift_ppb < 0 ? -drift_ppb : drift_ppb;
    if (ap == 0) return anchor_local + Duration(d);
    if (ad <= INT64_MAX / ap) return anchor_local + Duration(d + d * drift_ppb / kPpb);  // the common case
    const Int128 v = Int128(d) + Int128(d) * drift_ppb / kPpb;
    return anchor_local + Duration(static_cast<std::int64_t>(v));
  }
  DtnTime Local(DtnTime t) const { return std::max(Raw(t), floor_local); }
  // The first true instant >= not_before whose local time is >= local.
  DtnTime ToTrue(DtnTime local, DtnTime not_before) const {
    if (Local(not_before) >= local) return not_before;
    const std::int64_t dl = (local - anchor_local).count();
    const std::int64_t guess = (dl < INT64_MAX / kPpb && dl > -(INT64_MAX / kPpb))
                                   ? dl * kPpb / (kPpb + drift_ppb)
                                   : static_cast<std::int64_t>(Int128(dl) * kPpb / (kPpb + drift_ppb));
    DtnTime t = anchor_true + Duration(guess);
    while (Raw(t) < local) t += Duration(1);
    while (Raw(t - Duration(1)) >= local) t -= Duration(1);
    return std::max(t, not_before);
  }
  void Change(DtnTime t, std::optional<std::int64_t> new_drift_ppb, Duration step) {
    const DtnTime current = Local(t);
    anchor_true = t;
    anchor_local = Raw(t) + step;
    if (step.count() < 0) floor_local = std::max(floor_local, current);
    if (new_drift_ppb) drift_ppb = *new_drift_ppb;
  }
};

// A bulk bundle handed to a link, waiting for it to be free.
struct QueuedBulk {
  dtn::BundleId id;
  std::vector<std::uint8_t> bytes;
};

struct Link {
  std::size_t from = 0, to = 0;  // node indices
  int plan_open = 0;
  int cut = 0;
  bool open = false;
  DtnTime busy_until;  // the link sends one bundle at a time, in the order handed over...
  // ...except bulk bundles, which wait here and go only when nothing else is being sent (a
  // convergence layer that honours priority: coordination bundles never queue behind them).
  std::deque<QueuedBulk> bulk;
  bool idle_armed = false;  // a kLinkIdle event is pending
  std::uint64_t closes = 0;
  DtnTime last_close;
  double loss = 0, duplication = 0, reorder = 0;
  Duration reorder_delay_max{0};
};

enum class Ev : std::uint8_t {
  kLinkChange,
  kArrive,
  kAck,
  kTimer,
  kRequest,
  kUse,
  kDown,
  kUp,
  kClockFault,
  kReplayInject,
  kBulk,      // node: the sender; other: the [[bulk]] index
  kLinkIdle,  // node: the link index; its current transmission ends: send the next bulk bundle
};

constexpr std::uint32_t kNoPayload = UINT32_MAX;

// A small POD, so that the queue's heap moves little; what some kinds carry besides (a bundle's
// bytes, an acknowledged id, a resource) is a Payload in a slot of Engine::payloads_.
struct Event {
  DtnTime at;
  std::uint64_t seq = 0;
  Ev kind = Ev::kTimer;
  std::uint32_t node = 0;   // the node it happens at (or link index for kLinkChange)
  std::uint32_t other = 0;  // the sending node / request index / fault index
  std::uint32_t payload = kNoPayload;  // kArrive, kAck, kUse: its slot in Engine::payloads_
  std::int64_t a = 0, b = 0;           // kind-specific
};
// The setup's link changes of a year-long plan and the run's queue are arrays of these.
static_assert(sizeof(Event) == 48);
// A node, link, request or fault index as an Event holds it. Each of those is held in memory
// many times over, so 2^32 of any is out of reach; the check stands for the narrowing.
std::uint32_t Index32(std::size_t i) {
  if (i > UINT32_MAX) {
    std::fprintf(stderr, "ics-replay: index %zu does not fit an event\n", i);
    std::abort();
  }
  return static_cast<std::uint32_t>(i);
}
struct EventLater {
  bool operator()(const Event& x, const Event& y) const { return std::tie(x.at, x.seq) > std::tie(y.at, y.seq); }
};
struct Payload {
  std::vector<std::uint8_t> bytes;  // kArrive: the encoded bundle
  std::optional<dtn::BundleId> id;  // kAck
  ResourceName resource;            // kUse
};

struct WorkItem {
  std::size_t rover = 0;
  ResourceName resource;
  Duration at{0}, hold{0}, wait{0}, use_every{0};
};

struct Belief {
  FencingToken token = 0;
  coordinator::Epoch epoch = 0;
  DtnTime from;
  DtnTime view_end_local;
  DtnTime view_end_true;
  Duration use_every{0};
};
struct Pending {
  DtnTime since;
  Duration use_every{0};
};

struct SimNode {
  const NodeSpec* spec = nullptr;
  std::size_t index = 0;
  NodeNumber id = 0;
  Role role = Role::kRelay;
  SimClock clock;
  bool up = true;
  std::unique_ptr<dtn::BundleStore> store;
  std::unique_ptr<dtn::Node> node;
  dtn::NodeCounters counters_before;  // of node objects destroyed by crashes
  // coordinator
  std::unique_ptr<coordinator::LeaseLog> log;
  coordinator::InMemoryLeaseLog* memory_log = nullptr;
  std::unique_ptr<coordinator::PlanPolicy> plan_policy;
  std::unique_ptr<coordinator::LeaseCore> lease;
  // rover
  std::unique_ptr<rover_agent::AgentStore> agent_store;
  std::unique_ptr<rover_agent::AgentCore> agent;
  std::optional<rover_agent::AgentConfig> agent_config;
  std::vector<std::size_t> guards;
  // guard
  std::unique_ptr<rover_agent::GuardStore> guard_store;
  std::unique_ptr<rover_agent::GuardCore> guard;
  std::vector<std::pair<dtn::Eid, dtn::BundleId>> to_confirm;  // (endpoint, bundle) delivered
  bool bulk_receiver = false;  // registers ipn:id.66 for [[bulk]] data
  std::vector<std::size_t> links_out;  // link indices from this node, by neighbour id
  std::optional<DtnTime> armed;
  std::uint64_t timer_generation = 0;
  std::map<NodeNumber, std::pair<DtnTime, Duration>> lifetimes;  // peer -> (computed at, lifetime)
  NodeFigures figures;
};

class Engine {
 public:
  Engine(const Scenario& s, const ReplayOptions& o) : s_(s), o_(o), rng_(o.seed) {}

  std::expected<ReplayResult, std::string> Run(const std::string& epochlog_path);

 private:
  std::expected<void, std::string> Setup(const std::string& epochlog_path);
  std::expected<std::size_t, std::string> NodeIndex(const std::string& name, std::string_view what) const;
  // Events pushed during Setup (every link change of the plan, the workload, the faults) go to
  // a list sorted once (by the same (time, sequence) order) and merged with the heap when
  // popping, so the heap holds only what the run itself schedules.
  void Push(Event e) {
    e.seq = next_seq_++;
    if (in_setup_) {
      setup_events_.push_back(e);
      return;
    }
    queue_.push_back(e);
    std::push_heap(queue_.begin(), queue_.end(), EventLater{});
  }
  // Pushes an event with a payload (moved into a free slot).
  void Push(Event e, Payload&& p) {
    if (free_payloads_.empty()) {
      e.payload = static_cast<std::uint32_t>(payloads_.size());
      payloads_.push_back(std::move(p));
    } else {
      e.payload = free_payloads_.back();
      free_payloads_.pop_back();
      payloads_[e.payload] = std::move(p);
    }
    Push(e);
  }
  void FreePayload(std::uint32_t slot) {
    if (slot == kNoPayload) return;
    payloads_[slot].bytes.clear();
    payloads_[slot].id.reset();
    free_payloads_.push_back(slot);
  }
  const Event* Top() const {
    const Event* s = setup_next_ < setup_order_.size() ? &setup_events_[setup_order_[setup_next_]] : nullptr;
    const Event* q = queue_.empty() ? nullptr : &queue_.front();
    if (s == nullptr) return q;
    if (q == nullptr) return s;
    return EventLater{}(*s, *q) ? q : s;
  }
  Event Pop() {
    if (setup_next_ < setup_order_.size() &&
        (queue_.empty() || !EventLater{}(setup_events_[setup_order_[setup_next_]], queue_.front()))) {
      return setup_events_[setup_order_[setup_next_++]];
    }
    std::pop_heap(queue_.begin(), queue_.end(), EventLater{});
    Event e = queue_.back();
    queue_.pop_back();
    return e;
  }
  DtnTime Local(const SimNode& n) const { return n.clock.Local(now_); }

  void BuildCores(SimNode& n, bool restart);
  void DestroyCores(SimNode& n);
  void Pump(SimNode& n);
  bool FlushApp(SimNode& n);
  void SendAdu(SimNode& n, NodeNumber to, std::uint64_t service, const coordinator::Message& m,
               std::vector<std::uint8_t> payload = {});
  void HandleDeliver(SimNode& n, const dtn::Deliver& d);
  void Transmit(SimNode& n, dtn::Transmit& t);  // takes t.bytes
  void SendOnLink(SimNode& n, std::size_t li, NodeNumber neighbour, std::vector<std::uint8_t> bytes);
  void ServeBulk(std::size_t li);
  void StartBulk(SimNode& n, const BulkTransfer& b);
  void Acknowledge(SimNode& n, const dtn::Acknowledge& a);
  void Arm(SimNode& n);
  void OnNotification(SimNode& n, const rover_agent::Notification& note);
  void CloseBelief(std::size_t rover, const ResourceName& r, DtnTime at);
  void ClosePending(std::size_t rover, const ResourceName& r, bool granted);
  void Handle(Event& e);
  void UpdateLink(std::size_t li, int d_open, int d_cut);
  Link* FindLink(std::size_t from, NodeNumber to_id);
  void Record(const SimNode& n, json j);
  void SampleStore(SimNode& n);
  Duration Lifetime(SimNode& n, NodeNumber to);

  const Scenario& s_;
  const ReplayOptions& o_;
  std::mt19937_64 rng_;
  DtnTime now_;
  DtnTime end_;
  dtn::ContactPlan plan_;
  std::vector<std::unique_ptr<SimNode>> nodes_;
  std::map<NodeNumber, std::size_t> by_id_;
  std::vector<Link> links_;
  std::map<std::pair<std::size_t, std::size_t>, std::size_t> link_index_;
  std::vector<Event> queue_;  // a min-heap by (at, seq)
  bool in_setup_ = true;
  std::vector<Event> setup_events_;         // in push order
  std::vector<std::uint32_t> setup_order_;  // their indices by (at, seq), at the end of Setup
  std::size_t setup_next_ = 0;              // in setup_order_
  std::deque<Payload> payloads_;  // a deque: references stay valid while events are pushed
  std::vector<std::uint32_t> free_payloads_;
  std::uint64_t next_seq_ = 0;
  std::vector<WorkItem> work_;
  std::size_t coordinator_ = 0;
  std::map<std::pair<std::size_t, ResourceName>, Belief> beliefs_;
  std::map<std::pair<std::size_t, ResourceName>, Pending> pending_;
  std::vector<Duration> latencies_;
  std::map<ResourceName, std::vector<std::pair<DtnTime, DtnTime>>> waiting_;  // per resource
  std::map<ResourceName, std::uint64_t> grants_per_resource_;
  // Captured lease ADUs for Replay faults: (replay index) -> (destination, payload).
  std::vector<std::vector<std::pair<NodeNumber, std::vector<std::uint8_t>>>> captured_;
  std::string temp_dir_;
  ReplayResult r_;
};

// The indices of `events` ordered by time, equal times in index order: a least-significant-digit
// radix sort of the times' offsets from the earliest, in as few passes of at most 12 bits as the
// spread needs (3 for up to 795 days in ms), over the offsets copied out once (a pass then reads
// 8-byte keys, not 48-byte events). Linear in the number of events, where a comparison sort of
// the year's few hundred thousand link changes was a visible part of the setup.
std::vector<std::uint32_t> StableOrderByTime(const std::vector<Event>& events) {
  std::vector<std::uint32_t> order(events.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = Index32(i);
  if (events.size() < 2) return order;
  std::int64_t lo = events[0].at.millis(), hi = lo;
  for (const Event& e : events) {
    lo = std::min(lo, e.at.millis());
    hi = std::max(hi, e.at.millis());
  }
  std::vector<std::uint64_t> key(events.size());
  for (std::size_t i = 0; i < events.size(); ++i) {
    key[i] = static_cast<std::uint64_t>(events[i].at.millis()) - static_cast<std::uint64_t>(lo);
  }
  const unsigned bits = static_cast<unsigned>(std::bit_width(static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo)));
  if (bits == 0) return order;
  constexpr unsigned kBitsMax = 12;
  const unsigned passes = (bits + kBitsMax - 1) / kBitsMax;
  const unsigned digit_bits = (bits + passes - 1) / passes;
  const std::uint64_t mask = (std::uint64_t{1} << digit_bits) - 1;
  std::vector<std::uint32_t> next(events.size());
  std::vector<std::uint32_t> count(std::size_t{1} << digit_bits);
  for (unsigned shift = 0; shift < bits; shift += digit_bits) {
    auto digit = [&](std::uint32_t i) { return static_cast<std::size_t>((key[i] >> shift) & mask); };
    std::fill(count.begin(), count.end(), 0);
    for (std::uint32_t i : order) ++count[digit(i)];
    std::uint32_t sum = 0;
    for (std::uint32_t& c : count) sum += std::exchange(c, sum);
    for (std::uint32_t i : order) next[count[digit(i)]++] = i;
    order.swap(next);
  }
  return order;
}

std::expected<std::size_t, std::string> Engine::NodeIndex(const std::string& name, std::string_view what) const {
  for (const auto& n : nodes_) {
    if (n->spec->name == name) return n->index;
  }
  return std::unexpected(fmt::format("{}: {} names an unknown node '{}'", s_.source, what, name));
}

// Every transmission and acknowledgement looks its link up: a scan of the sender's few links
// instead of two map lookups (links are unique per (from, to), as link_index_ holds them).
Link* Engine::FindLink(std::size_t from, NodeNumber to_id) {
  for (std::size_t li : nodes_[from]->links_out) {
    if (nodes_[links_[li].to]->id == to_id) return &links_[li];
  }
  return nullptr;
}

std::expected<void, std::string> Engine::Setup(const std::string& epochlog_path) {
  const DtnTime start = s_.start;
  end_ = start + (o_.until ? std::min(*o_.until, s_.duration) : s_.duration);
  now_ = start;
  r_.scenario = s_.name;
  r_.seed = o_.seed;

  // Nodes, clocks.
  for (std::size_t i = 0; i < s_.nodes.size(); ++i) {
    auto n = std::make_unique<SimNode>();
    n->spec = &s_.nodes[i];
    n->index = i;
    n->id = s_.nodes[i].id;
    n->role = s_.nodes[i].role;
    n->figures.name = s_.nodes[i].name;
    double ppm = 0;
    const double bound = std::abs(s_.nodes[i].clock.drift_ppm);
    if (s_.nodes[i].actual_drift_ppm) {
      ppm = *s_.nodes[i].actual_drift_ppm;
    } else if (bound > 0) {
      ppm = std::uniform_real_distribution<double>(-bound, bound)(rng_);
    }
    n->clock.anchor_true = start;
    n->clock.anchor_local = start + s_.nodes[i].clock.skew;
    n->clock.floor_local = n->clock.anchor_local;
    n->clock.drift_ppb = static_cast<std::int64_t>(std::llround(ppm * 1000.0));
    if (by_id_.contains(n->id)) return std::unexpected(fmt::format("{}: node number {} used twice", s_.source, n->id));
    by_id_[n->id] = i;
    if (n->role == Role::kCoordinator) coordinator_ = i;
    nodes_.push_back(std::move(n));
  }
  if (s_.nodes.empty()) return std::unexpected(fmt::format("{}: no nodes", s_.source));
  if (std::count_if(s_.nodes.begin(), s_.nodes.end(), [](const NodeSpec& n) { return n.role == Role::kCoordinator; }) != 1) {
    return std::unexpected(fmt::format("{}: a scenario needs exactly one coordinator", s_.source));
  }

  // The plan (+ orbital ranges).
  // The plan is built once, after the orbital ranges are added (the parse's own entries, not a
  // plan built from them and copied).
  // The orbital light-time bounds depend only on the two bodies: sampled once per pair of bodies
  // and reused for every node pair on them. Sampling is the costly part of a long scenario's
  // setup (a few milliseconds a simulated month), so a second thread samples, up to the end of
  // the run, every pair the nodes could need while this one parses the plan; steps past that (a
  // plan reaching beyond the run, or no thread to be had) are sampled here when needed. Each step
  // is computed alone, by the same code, so the figures do not depend on which thread did it.
  using BodyPair = std::pair<clock::Body, clock::Body>;
  struct BodyPairBounds {
    NodeNumber a = 0, b = 0;  // two nodes on those bodies (a < b), for OrbitalModel::Bound
    std::vector<std::optional<clock::OwltBound>> steps;
  };
  std::map<BodyPair, BodyPairBounds> by_bodies;
  clock::OrbitalModel model;
  const DtnTime orbital_from = start - std::chrono::hours(48);
  const Duration orbital_step = std::max<Duration>(s_.orbital_range_step, std::chrono::minutes(1));
  std::jthread sampler;  // declared after what it writes: joined before those are destroyed
  if (s_.orbital_ranges) {
    for (const auto& n : nodes_) {
      if (n->spec->body) model.Place(n->id, *n->spec->body);
    }
    for (const auto& x : nodes_) {
      for (const auto& y : nodes_) {
        if (x->id >= y->id || !x->spec->body || !y->spec->body || *x->spec->body == *y->spec->body) continue;
        by_bodies.try_emplace(std::minmax(*x->spec->body, *y->spec->body), BodyPairBounds{x->id, y->id, {}});
      }
    }
    try {
      // Stops early when asked (the setup returns on a plan error) or out of memory: the steps it
      // did not sample are sampled below, on demand.
      sampler = std::jthread([&by_bodies, &model, orbital_from, orbital_step,
                              until = end_ + std::chrono::hours(48)](std::stop_token stop) {
        try {
          for (auto& [bodies, pair] : by_bodies) {
            for (DtnTime t0 = orbital_from; t0 < until && !stop.stop_requested(); t0 += orbital_step) {
              pair.steps.push_back(model.Bound(pair.a, pair.b, t0, t0 + orbital_step));
            }
          }
        } catch (const std::bad_alloc&) {
        }
      });
    } catch (const std::system_error&) {
      // No thread (a process limit): every step is sampled below, on demand.
    }
  }
  auto parsed =
      dtn::ParseContactPlanEntries(s_.plan_text, s_.plan_source.empty() ? s_.source + ":plan" : s_.plan_source, start);
  if (!parsed) {
    sampler.request_stop();
    return std::unexpected(parsed.error().ToString());
  }
  std::vector<dtn::Contact> contacts = std::move(parsed->contacts);
  std::vector<clock::RangeEntry> ranges = std::move(parsed->ranges);
  std::optional<DtnTime> last_end;
  for (const auto& c : contacts) last_end = last_end ? std::max(*last_end, c.end) : c.end;
  std::set<std::pair<std::size_t, std::size_t>> pairs;
  for (const auto& c : contacts) {
    auto f = by_id_.find(c.from), t = by_id_.find(c.to);
    if (f == by_id_.end() || t == by_id_.end() || c.from == c.to) continue;
    pairs.insert({f->second, t->second});
  }
  if (s_.orbital_ranges) {
    if (sampler.joinable()) sampler.join();
    std::set<std::pair<NodeNumber, NodeNumber>> done;
    const DtnTime horizon = std::max(end_, last_end.value_or(end_)) + std::chrono::hours(48);
    for (const auto& [f, t] : pairs) {
      const NodeNumber a = std::min(nodes_[f]->id, nodes_[t]->id), b = std::max(nodes_[f]->id, nodes_[t]->id);
      if (!done.insert({a, b}).second) continue;
      if (!model.BodyOf(a) || !model.BodyOf(b)) continue;
      if (*model.BodyOf(a) == *model.BodyOf(b)) {  // one body: 0 s (surface distances ignored)
        ranges.push_back({orbital_from, horizon, a, b, Duration(0)});
        continue;
      }
      BodyPairBounds& memo = by_bodies.at(std::minmax(*model.BodyOf(a), *model.BodyOf(b)));
      std::size_t k = 0;
      for (DtnTime t0 = orbital_from; t0 < horizon; t0 += orbital_step, ++k) {
        if (k == memo.steps.size()) memo.steps.push_back(model.Bound(memo.a, memo.b, t0, t0 + orbital_step));
        const std::optional<clock::OwltBound>& bound = memo.steps[k];
        if (!bound) continue;
        // Consecutive steps with the same bound (always, for two nodes on one body) become one
        // range: routing's range lookups cost less.
        if (!ranges.empty() && ranges.back().a == a && ranges.back().b == b && ranges.back().end == t0 &&
            ranges.back().owlt == bound->max) {
          ranges.back().end = t0 + orbital_step;
        } else {
          ranges.push_back({t0, t0 + orbital_step, a, b, bound->max});
        }
      }
    }
  }
  plan_ = dtn::ContactPlan(std::move(contacts), std::move(ranges));

  // Links and their faults.
  for (const auto& [f, t] : pairs) {
    Link l;
    l.from = f;
    l.to = t;
    l.busy_until = start;
    for (const auto& lf : s_.link_faults) {
      bool applies = lf.nodes.empty();
      for (const auto& name : lf.nodes) {
        applies = applies || name == nodes_[f]->spec->name || name == nodes_[t]->spec->name;
      }
      if (!applies) continue;
      l.loss = std::max(l.loss, lf.loss);
      l.duplication = std::max(l.duplication, lf.duplication);
      l.reorder = std::max(l.reorder, lf.reorder);
      l.reorder_delay_max = std::max(l.reorder_delay_max, lf.reorder_delay_max);
    }
    link_index_[{f, t}] = links_.size();
    nodes_[f]->links_out.push_back(links_.size());
    links_.push_back(l);
  }
  // Every setup event but a random workload's requests; pages reserved and never written cost
  // nothing, a reallocation copies the lot.
  std::size_t setup_events_max = 2 * plan_.contacts().size() + 2 * s_.partitions.size() * links_.size() +
                                 s_.requests.size() + 2 * s_.crashes.size() + s_.clock_faults.size() +
                                 s_.replays.size();
  for (const BulkTransfer& b : s_.bulk) setup_events_max += static_cast<std::size_t>(std::max(b.count, 0));
  setup_events_.reserve(setup_events_max);
  for (const auto& c : plan_.contacts()) {
    auto f = by_id_.find(c.from), t = by_id_.find(c.to);
    if (f == by_id_.end() || t == by_id_.end() || c.from == c.to) continue;
    const std::size_t li = link_index_.at({f->second, t->second});
    if (c.end <= start || c.start >= end_) continue;
    Push({.at = std::max(c.start, start), .kind = Ev::kLinkChange, .node = Index32(li), .a = 1});
    if (c.end < end_) Push({.at = c.end, .kind = Ev::kLinkChange, .node = Index32(li), .a = -1});
  }
  for (const auto& p : s_.partitions) {
    std::set<std::size_t> a, b;
    for (const auto& name : p.side_a) {
      auto i = NodeIndex(name, "a partition");
      if (!i) return std::unexpected(i.error());
      a.insert(*i);
    }
    for (const auto& name : p.side_b) {
      auto i = NodeIndex(name, "a partition");
      if (!i) return std::unexpected(i.error());
      b.insert(*i);
    }
    for (std::size_t li = 0; li < links_.size(); ++li) {
      const Link& l = links_[li];
      const bool cut = (a.contains(l.from) && b.contains(l.to)) || (b.contains(l.from) && a.contains(l.to));
      if (!cut) continue;
      Push({.at = start + p.from, .kind = Ev::kLinkChange, .node = Index32(li), .b = 1});
      Push({.at = start + p.until, .kind = Ev::kLinkChange, .node = Index32(li), .b = -1});
    }
    if (o_.record_events) Record(*nodes_[coordinator_], json{{"type", "fault"}, {"event", "partition"}, {"side_a", p.side_a},
                                      {"side_b", p.side_b}, {"from", (start + p.from).ToIso8601()},
                                      {"until", (start + p.until).ToIso8601()}});
  }

  // Stores.
  if (o_.stores == StoreKind::kSqlite) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "ics-replay.XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return std::unexpected("cannot create a temporary directory for the stores");
    temp_dir_ = tmpl;
  }
  for (auto& np : nodes_) {
    SimNode& n = *np;
    const std::string base = temp_dir_ + "/" + std::to_string(n.id);
    if (o_.stores == StoreKind::kSqlite) {
      dtn::SqliteBundleStoreOptions so;
      so.durability = storage::Durability::kOff;
      auto st = dtn::SqliteBundleStore::Open(base + "-bundles.db", so);
      if (!st) return std::unexpected(st.error().message);
      n.store = std::move(*st);
    } else {
      n.store = std::make_unique<dtn::MemoryBundleStore>();
    }
    if (n.role == Role::kCoordinator) {
      if (o_.stores == StoreKind::kSqlite) {
        const std::string path = epochlog_path.empty() ? base + "-epochlog.db" : epochlog_path;
        std::filesystem::remove(path);
        auto lg = coordinator::SqliteLeaseLog::Open(path, storage::Durability::kOff);
        if (!lg) return std::unexpected(lg.error().message);
        n.log = std::move(*lg);
      } else {
        auto lg = std::make_unique<coordinator::InMemoryLeaseLog>();
        n.memory_log = lg.get();
        n.log = std::move(lg);
      }
      coordinator::PlanPolicyConfig pc;
      pc.self = n.id;
      pc.self_clock = n.spec->clock;
      pc.self_clock.drift_ppm = std::abs(pc.self_clock.drift_ppm);
      pc.self_clock.skew = Duration(std::abs(pc.self_clock.skew.count()));
      for (const auto& other : s_.nodes) {
        if (other.role != Role::kRover) continue;
        pc.peer_clock.drift_ppm = std::max(pc.peer_clock.drift_ppm, std::abs(other.clock.drift_ppm));
        pc.peer_clock.skew = std::max(pc.peer_clock.skew, Duration(std::abs(other.clock.skew.count())));
      }
      pc.processing_margin = s_.processing_margin;
      n.plan_policy = std::make_unique<coordinator::PlanPolicy>(plan_, pc);
    } else if (n.role == Role::kRover) {
      if (o_.stores == StoreKind::kSqlite) {
        auto st = rover_agent::OpenSqliteAgentStore(base + "-agent.db", kScratchStores);
        if (!st) return std::unexpected(st.error());
        n.agent_store = std::move(*st);
      } else {
        n.agent_store = std::make_unique<rover_agent::InMemoryAgentStore>();
      }
      for (const auto& g : n.spec->guards) {
        auto gi = NodeIndex(g, fmt::format("rover '{}' guards", n.spec->name));
        if (!gi) return std::unexpected(gi.error());
        n.guards.push_back(*gi);
      }
    } else if (n.role == Role::kGuard) {
      if (o_.stores == StoreKind::kSqlite) {
        auto st = rover_agent::OpenSqliteGuardStore(base + "-guard.db", kScratchStores);
        if (!st) return std::unexpected(st.error());
        n.guard_store = std::move(*st);
      } else {
        n.guard_store = std::make_unique<rover_agent::InMemoryGuardStore>();
      }
    }
  }
  // Rovers without guards of their own use every guard.
  for (auto& n : nodes_) {
    if (n->role != Role::kRover || !n->guards.empty()) continue;
    for (const auto& g : nodes_) {
      if (g->role == Role::kGuard) n->guards.push_back(g->index);
    }
  }

  // Agent configurations: the policy to the coordinator as the daemon computes it at start, kept
  // for the whole run (it is configuration); the term from the scenario or derived as the daemon
  // derives it.
  for (auto& np : nodes_) {
    SimNode& n = *np;
    if (n.role != Role::kRover) continue;
    const SimNode& c = *nodes_[coordinator_];
    coordinator::PlanPolicyConfig pc;
    pc.self = n.id;
    pc.self_clock = n.spec->clock;
    pc.self_clock.drift_ppm = std::abs(pc.self_clock.drift_ppm);
    pc.self_clock.skew = Duration(std::abs(pc.self_clock.skew.count()));
    pc.peer_clock = c.spec->clock;
    pc.peer_clock.drift_ppm = std::abs(pc.peer_clock.drift_ppm);
    pc.peer_clock.skew = Duration(std::abs(pc.peer_clock.skew.count()));
    pc.processing_margin = s_.processing_margin;
    coordinator::PlanPolicy policy(plan_, pc);
    rover_agent::AgentConfig config{.self = n.id, .coordinator = c.id,
                                    .policy = policy.For(c.id, Local(n), true), .lease_term = Duration(0)};
    const Duration derived = std::chrono::ceil<std::chrono::seconds>(
        std::max<Duration>(std::chrono::minutes(1), 4 * config.policy.RoundTripMax().value));
    config.lease_term = n.spec->lease_term.value_or(derived);
    if (auto ok = config.policy.LeaseTerm(config.lease_term); !ok) {
      r_.warnings.push_back(fmt::format("rover {}: lease term {} refused by its policy ({}); using {}", n.spec->name,
                                        clock::FormatDuration(config.lease_term), ok.error().why,
                                        clock::FormatDuration(derived)));
      config.lease_term = derived;
      if (!config.policy.LeaseTerm(config.lease_term)) {
        r_.warnings.push_back(fmt::format("rover {}: no usable lease term; its requests are refused", n.spec->name));
        continue;
      }
    }
    n.agent_config = config;
  }

  // Workload.
  for (const auto& q : s_.requests) {
    auto i = NodeIndex(q.rover, "a request");
    if (!i) return std::unexpected(i.error());
    work_.push_back({*i, q.resource, q.at, q.hold, q.wait, q.use_every});
  }
  for (const auto& w : s_.random_workloads) {
    if (w.rovers.empty() || w.resources.empty() || w.mean_interarrival.count() <= 0) continue;
    std::vector<std::size_t> rovers;
    for (const auto& name : w.rovers) {
      auto i = NodeIndex(name, "a random workload");
      if (!i) return std::unexpected(i.error());
      rovers.push_back(*i);
    }
    std::mt19937_64 g(o_.seed ^ (w.seed_salt * 0x9E3779B97F4A7C15ull) ^ 0x5eed);
    std::exponential_distribution<double> gap(1.0 / static_cast<double>(w.mean_interarrival.count()));
    Duration t = w.from;
    for (std::size_t k = 0; k < 1'000'000; ++k) {
      t += Duration(static_cast<std::int64_t>(std::ceil(gap(g))));
      if (t >= w.until) break;
      const std::size_t rover = rovers[g() % rovers.size()];
      const ResourceName& res = w.resources[g() % w.resources.size()];
      const std::int64_t span = std::max<std::int64_t>(0, (w.hold_max - w.hold_min).count());
      const Duration hold = w.hold_min + Duration(span == 0 ? 0 : static_cast<std::int64_t>(g() % (span + 1)));
      work_.push_back({rover, res, t, hold, w.wait, w.use_every});
    }
  }
  for (std::size_t k = 0; k < work_.size(); ++k) {
    Push({.at = start + work_[k].at, .kind = Ev::kRequest, .other = Index32(k)});
  }
  // Faults.
  for (std::size_t k = 0; k < s_.crashes.size(); ++k) {
    const auto& c = s_.crashes[k];
    auto i = NodeIndex(c.node, "a crash");
    if (!i) return std::unexpected(i.error());
    Push({.at = start + c.at, .kind = Ev::kDown, .node = Index32(*i), .other = Index32(k)});
    Push({.at = start + c.at + c.down_for, .kind = Ev::kUp, .node = Index32(*i), .other = Index32(k)});
  }
  for (std::size_t k = 0; k < s_.clock_faults.size(); ++k) {
    auto i = NodeIndex(s_.clock_faults[k].node, "a clock fault");
    if (!i) return std::unexpected(i.error());
    Push({.at = start + s_.clock_faults[k].at, .kind = Ev::kClockFault, .node = Index32(*i), .other = Index32(k)});
  }
  for (std::size_t k = 0; k < s_.bulk.size(); ++k) {
    const BulkTransfer& b = s_.bulk[k];
    auto from = NodeIndex(b.node, "a bulk transfer");
    if (!from) return std::unexpected(from.error());
    auto to = NodeIndex(b.to, "a bulk transfer");
    if (!to) return std::unexpected(to.error());
    nodes_[*to]->bulk_receiver = true;
    for (int i = 0; i < b.count; ++i) {
      const Duration at = b.at + b.every * i;
      if (at >= s_.duration) break;
      Push({.at = start + at, .kind = Ev::kBulk, .node = Index32(*from), .other = Index32(k)});
    }
  }
  captured_.resize(s_.replays.size());
  for (std::size_t k = 0; k < s_.replays.size(); ++k) {
    auto i = NodeIndex(s_.replays[k].from_node, "a replay");
    if (!i) return std::unexpected(i.error());
    Push({.at = start + s_.replays[k].replay_at, .kind = Ev::kReplayInject, .node = Index32(*i), .other = Index32(k)});
  }

  // Ordered by (at, seq): seq grows with the push order, i.e. the index, so a stable sort of the
  // indices by `at` alone is that order; the events themselves stay where they are.
  setup_order_ = StableOrderByTime(setup_events_);
  in_setup_ = false;

  // Start every node.
  for (auto& n : nodes_) BuildCores(*n, false);
  for (auto& n : nodes_) Pump(*n);
  return {};
}

void Engine::Record(const SimNode& n, json j) {
  if (!o_.record_events) return;
  json line{{"t", now_.ToIso8601()}, {"node", n.spec->name}, {"local", Local(n).ToIso8601()}};
  for (auto& [k, v] : j.items()) line[k] = v;
  r_.event_lines.push_back(line.dump(-1, ' ', false, json::error_handler_t::replace));
}

void Engine::BuildCores(SimNode& n, bool restart) {
  const DtnTime local = Local(n);
  dtn::NodeConfig nc;
  nc.node = n.id;
  nc.plan = &plan_;
  nc.retransmit_margin = s_.processing_margin;
  n.node = std::make_unique<dtn::Node>(nc, *n.store);
  if (n.role == Role::kCoordinator) {
    auto epoch = n.log->StartEpoch(restart ? "restart" : "start", local);
    if (!epoch) {
      fmt::print(stderr, "ics-replay: the lease log failed: {}\n", epoch.error().message);
      std::abort();
    }
    auto table = n.log->LoadState();
    if (!table) {
      fmt::print(stderr, "ics-replay: the lease log failed: {}\n", table.error().message);
      std::abort();
    }
    coordinator::LeaseCoreConfig cc;
    cc.self = n.id;
    cc.epoch = *epoch;
    coordinator::PlanPolicy* policy = n.plan_policy.get();
    n.lease = std::make_unique<coordinator::LeaseCore>(
        cc, std::move(*table), [policy](NodeNumber requester, DtnTime t) { return policy->For(requester, t, false); },
        local);
    r_.history.epochs.push_back({*epoch, now_});
    ++r_.epochs;
    if (o_.record_events) Record(n, json{{"type", "lease"}, {"event", "epoch_start"}, {"epoch", *epoch}});
    n.node->RegisterEndpoint(dtn::Eid::Ipn(n.id, coordinator::kLeaseService), local);
  } else if (n.role == Role::kRover) {
    if (n.agent_config) {
      auto snapshot = n.agent_store->Load();
      if (!snapshot) {
        fmt::print(stderr, "ics-replay: agent store of {} failed: {}\n", n.spec->name, snapshot.error());
        std::abort();
      }
      n.agent = std::make_unique<rover_agent::AgentCore>(*n.agent_config, std::move(*snapshot), local);
    }
    n.node->RegisterEndpoint(dtn::Eid::Ipn(n.id, coordinator::kLeaseService), local);
  } else if (n.role == Role::kGuard) {
    auto highest = n.guard_store->Load();
    if (!highest) {
      fmt::print(stderr, "ics-replay: guard store of {} failed: {}\n", n.spec->name, highest.error());
      std::abort();
    }
    n.guard = std::make_unique<rover_agent::GuardCore>(rover_agent::GuardConfig{.self = n.id}, *highest);
    n.node->RegisterEndpoint(dtn::Eid::Ipn(n.id, coordinator::kGuardService), local);
  }
  if (n.bulk_receiver) n.node->RegisterEndpoint(dtn::Eid::Ipn(n.id, kBulkService), local);
  for (std::size_t li : n.links_out) {
    if (links_[li].open) n.node->OnContactStart(nodes_[links_[li].to]->id, local);
  }
}

void Engine::DestroyCores(SimNode& n) {
  if (n.node) {
    const auto& c = n.node->counters();
    n.counters_before.transmissions += c.transmissions;
    n.counters_before.expired += c.expired;
    n.counters_before.delivered += c.delivered;
  }
  n.lease.reset();
  n.agent.reset();
  n.guard.reset();
  n.node.reset();
  n.to_confirm.clear();
  n.armed.reset();
  ++n.timer_generation;
}

// The bundle lifetime the daemons give lease messages: max(1 h, 2 x suspicion timeout). Cached
// per (node, peer) for an hour of local time (the policy's bounds move every few hours); the
// figure alone is taken (SuspicionTimeoutValue), without formatting its explanation.
Duration Engine::Lifetime(SimNode& n, NodeNumber to) {
  const DtnTime local = Local(n);
  auto& cached = n.lifetimes[to];
  if (cached.second.count() > 0 && local - cached.first < std::chrono::hours(1)) return cached.second;
  Duration d = std::chrono::hours(24);
  if (n.role == Role::kCoordinator) {
    d = n.plan_policy->For(to, local, false).MessageLifetimeValue();
  } else if (n.agent_config) {
    d = n.agent_config->policy.MessageLifetimeValue();
  }
  cached = {local, d};
  return d;
}

void Engine::SendAdu(SimNode& n, NodeNumber to, std::uint64_t service, const coordinator::Message& m,
                     std::vector<std::uint8_t> payload) {
  dtn::SendRequest req;
  req.source = dtn::Eid::Ipn(n.id, n.role == Role::kGuard ? coordinator::kGuardService : coordinator::kLeaseService);
  req.destination = dtn::Eid::Ipn(to, service);
  req.priority = dtn::Priority::kExpedited;
  req.lifetime = Lifetime(n, to);
  req.payload = payload.empty() ? coordinator::Encode(m) : std::move(payload);
  ++r_.lease_messages;
  for (std::size_t k = 0; k < s_.replays.size(); ++k) {
    const auto& rp = s_.replays[k];
    if (rp.from_node == n.spec->name && now_ >= s_.start + rp.capture_from && now_ < s_.start + rp.capture_until &&
        captured_[k].size() < 10'000) {
      captured_[k].push_back({to, req.payload});
    }
  }
  if (o_.record_events) Record(n, json{{"type", "message"}, {"event", "send"}, {"message", std::string(coordinator::MessageName(m))},
                 {"to", to}, {"resource", coordinator::HeaderOf(m).resource.ToString()},
                 {"epoch", coordinator::HeaderOf(m).epoch}, {"request_id", coordinator::HeaderOf(m).request_id}});
  auto sent = n.node->Send(req, Local(n));
  if (!sent) r_.warnings.push_back(fmt::format("{}: send refused: {}", n.spec->name, dtn::SendErrorName(sent.error())));
}

bool Engine::FlushApp(SimNode& n) {
  bool any = false;
  if (n.lease) {
    coordinator::Output out = n.lease->TakeOutput();
    any = !out.to_persist.empty() || !out.to_send.empty();
    if (!out.to_persist.empty()) {
      if (auto ok = n.log->Append(out.to_persist); !ok) {
        fmt::print(stderr, "ics-replay: the lease log failed: {}\n", ok.error().message);
        std::abort();
      }
      for (const auto& rec : out.to_persist) {
        if (rec.kind == coordinator::EventKind::kGrant) {
          r_.history.grants.push_back({rec.epoch, rec.resource, rec.token.value_or(0), rec.rover.value_or(0), now_});
          ++grants_per_resource_[rec.resource];
        }
        if (o_.record_events) {
          json j{{"type", "lease"}, {"event", std::string(coordinator::EventKindName(rec.kind))},
                 {"epoch", rec.epoch}, {"resource", rec.resource.ToString()}};
          if (rec.rover) j["rover"] = *rec.rover;
          if (rec.token) j["token"] = *rec.token;
          if (rec.lease_expires) j["lease_expires"] = rec.lease_expires->ToIso8601();
          if (!rec.reason.empty()) j["reason"] = rec.reason;
          if (o_.record_events) Record(n, std::move(j));
        }
      }
    }
    for (const auto& o : out.to_send) SendAdu(n, o.to, coordinator::kLeaseService, o.message);
  }
  if (n.agent) {
    rover_agent::AgentOutput out = n.agent->TakeOutput();
    any = any || !out.empty();
    if (!out.to_persist.empty()) {
      if (auto ok = n.agent_store->Apply(out.to_persist); !ok) {
        fmt::print(stderr, "ics-replay: agent store of {} failed: {}\n", n.spec->name, ok.error());
        std::abort();
      }
    }
    for (const auto& o : out.to_send) {
      const bool to_guard = std::holds_alternative<coordinator::Use>(o.message);
      SendAdu(n, o.destination, to_guard ? coordinator::kGuardService : coordinator::kLeaseService, o.message);
    }
    for (const auto& note : out.notifications) OnNotification(n, note);
  }
  if (n.guard) {
    rover_agent::GuardOutput out = n.guard->TakeOutput();
    any = any || !out.to_persist.empty() || !out.accepted.empty() || !out.to_send.empty();
    if (!out.to_persist.empty()) {
      if (auto ok = n.guard_store->Apply(out.to_persist); !ok) {
        fmt::print(stderr, "ics-replay: guard store of {} failed: {}\n", n.spec->name, ok.error());
        std::abort();
      }
    }
    for (const auto& a : out.accepted) {
      r_.history.acceptances.push_back({n.spec->name, a.resource, a.token, a.source, now_});
      ++r_.uses_accepted;
      if (o_.record_events) Record(n, json{{"type", "guard"}, {"event", "accepted"}, {"resource", a.resource.ToString()},
                     {"token", a.token}, {"from", a.source}});
    }
    for (const auto& line : out.log) {
      ++r_.uses_rejected;
      if (o_.record_events) Record(n, json{{"type", "guard"}, {"event", "rejected"}, {"detail", line}});
    }
    for (const auto& o : out.to_send) SendAdu(n, o.destination, coordinator::kLeaseService, o.message);
  }
  return any;
}

void Engine::OnNotification(SimNode& n, const rover_agent::Notification& note) {
  using rover_agent::Outcome;
  const std::pair<std::size_t, ResourceName> key{n.index, note.resource};
  if (o_.record_events) {
    json j{{"type", "agent"}, {"event", std::string(rover_agent::OutcomeName(note.outcome))},
           {"resource", note.resource.ToString()}};
    if (note.token != 0) j["token"] = note.token;
    if (note.epoch != 0) j["epoch"] = note.epoch;
    if (note.valid_until) j["valid_until"] = note.valid_until->ToIso8601();
    if (!note.reason.empty()) j["reason"] = note.reason;
    if (o_.record_events) Record(n, std::move(j));
  }
  switch (note.outcome) {
    case Outcome::kGranted: {
      CloseBelief(n.index, note.resource, now_);
      Belief b;
      b.token = note.token;
      b.epoch = note.epoch;
      b.from = now_;
      b.view_end_local = note.valid_until.value_or(Local(n));
      b.view_end_true = n.clock.ToTrue(b.view_end_local, now_);
      if (auto p = pending_.find(key); p != pending_.end()) {
        b.use_every = p->second.use_every;
        latencies_.push_back(now_ - p->second.since);
        ++r_.granted;
        ClosePending(n.index, note.resource, true);
      }
      beliefs_[key] = b;
      if (b.use_every.count() > 0) {
        Push({.at = now_ + b.use_every, .kind = Ev::kUse, .node = Index32(n.index), .a = static_cast<std::int64_t>(b.token)},
             Payload{.resource = note.resource});
      }
      break;
    }
    case Outcome::kRenewed:
      if (auto it = beliefs_.find(key); it != beliefs_.end() && note.valid_until && it->second.token == note.token) {
        it->second.view_end_local = *note.valid_until;
        it->second.view_end_true = n.clock.ToTrue(*note.valid_until, now_);
      }
      break;
    case Outcome::kLapsed:
      ++r_.lapsed;
      CloseBelief(n.index, note.resource, now_);
      break;
    case Outcome::kReleased:
      CloseBelief(n.index, note.resource, now_);
      break;
    case Outcome::kDenied:
      ++r_.denied;
      ClosePending(n.index, note.resource, false);
      break;
    case Outcome::kGaveUp:
      ++r_.gave_up;
      ClosePending(n.index, note.resource, false);
      break;
    case Outcome::kRefused:
      pending_.erase(key);
      break;
    default:
      break;
  }
}

void Engine::CloseBelief(std::size_t rover, const ResourceName& r, DtnTime at) {
  auto it = beliefs_.find({rover, r});
  if (it == beliefs_.end()) return;
  const Belief& b = it->second;
  DtnTime until = std::min(at, b.view_end_true);
  // The mutation hook: a broken agent that keeps believing past its view (and its release).
  if (o_.belief_extension.count() > 0) until = b.view_end_true + o_.belief_extension;
  r_.history.holds.push_back({nodes_[rover]->spec->name, nodes_[rover]->id, r, b.token, b.epoch, b.from, until});
  beliefs_.erase(it);
}

void Engine::ClosePending(std::size_t rover, const ResourceName& r, bool) {
  auto it = pending_.find({rover, r});
  if (it == pending_.end()) return;
  waiting_[r].push_back({it->second.since, now_});
  pending_.erase(it);
}

void Engine::HandleDeliver(SimNode& n, const dtn::Deliver& d) {
  n.to_confirm.push_back({d.endpoint, d.id});
  if (d.endpoint.scheme() == dtn::Eid::Scheme::kIpn && d.endpoint.service() == kBulkService) {
    ++r_.bulk.bundles_delivered;
    r_.bulk.bytes_delivered += d.payload.size();
    r_.bulk.last_delivery = now_;
    return;
  }
  auto message = coordinator::Decode(d.payload);
  if (!message || d.source.scheme() != dtn::Eid::Scheme::kIpn) {
    if (o_.record_events) Record(n, json{{"type", "message"}, {"event", "undecodable"}, {"from", d.source.ToString()}});
    return;
  }
  const NodeNumber from = d.source.node();
  const DtnTime local = Local(n);
  if (o_.record_events) Record(n, json{{"type", "message"}, {"event", "receive"}, {"message", std::string(coordinator::MessageName(*message))},
                 {"from", from}, {"resource", coordinator::HeaderOf(*message).resource.ToString()},
                 {"epoch", coordinator::HeaderOf(*message).epoch}});
  if (n.lease) {
    n.lease->Receive({from, std::move(*message)}, local);
  } else if (n.agent) {
    n.agent->OnMessage(*message, from, local, d.created.time);
  } else if (n.guard) {
    if (const auto* use = std::get_if<coordinator::Use>(&*message)) {
      n.guard->OnUse(*use, from, local);
    } else {
      n.guard->OnMessage(*message, from, local);
    }
  }
}

void Engine::SampleStore(SimNode& n) {
  const dtn::StoreUsage u = n.store->usage();
  n.figures.store_bundles_peak = std::max(n.figures.store_bundles_peak, u.bundles);
  n.figures.store_bytes_peak = std::max(n.figures.store_bytes_peak, u.bytes);
}

void Engine::Pump(SimNode& n) {
  if (!n.up || !n.node) return;
  for (int round = 0; round < 10'000; ++round) {
    const bool app = FlushApp(n);
    if (!n.to_confirm.empty()) {
      for (const auto& [endpoint, id] : n.to_confirm) n.node->ConfirmDelivery(endpoint, id, Local(n));
      n.to_confirm.clear();
    }
    if (auto c = n.store->Commit(); !c) {
      fmt::print(stderr, "ics-replay: bundle store of {} failed: {}\n", n.spec->name, c.error().message);
      std::abort();
    }
    dtn::NodeOutput out = n.node->TakeOutput();
    SampleStore(n);
    if (out.empty() && !app) break;
    if (o_.record_events) {
      for (const auto& e : out.events) {
        json j{{"type", "bundle"}, {"event", std::string(dtn::BundleEventKindName(e.kind))}};
        if (e.id) j["id"] = e.id->ToString();
        if (e.neighbour) j["neighbour"] = *e.neighbour;
        if (!e.detail.empty()) j["detail"] = e.detail;
        if (o_.record_events) Record(n, std::move(j));
      }
    }
    for (auto& action : out.actions) {
      if (auto* t = std::get_if<dtn::Transmit>(&action)) {
        Transmit(n, *t);
      } else if (auto* a = std::get_if<dtn::Acknowledge>(&action)) {
        Acknowledge(n, *a);
      } else if (auto* d = std::get_if<dtn::Deliver>(&action)) {
        HandleDeliver(n, *d);
      }
    }
  }
  Arm(n);
}

void Engine::Transmit(SimNode& n, dtn::Transmit& t) {
  ++r_.bundle_transmissions;
  Link* l = FindLink(n.index, t.neighbour);
  if (l == nullptr || !l->open) {
    ++r_.bundles_lost;
    return;
  }
  const std::size_t li = static_cast<std::size_t>(l - links_.data());
  if (t.priority != dtn::Priority::kBulk) {
    SendOnLink(n, li, t.neighbour, std::move(t.bytes));
    return;
  }
  // A retransmission of a bundle still waiting for the link adds nothing to send.
  for (const QueuedBulk& q : l->bulk) {
    if (q.id == t.id) return;
  }
  l->bulk.push_back(QueuedBulk{t.id, std::move(t.bytes)});
  ServeBulk(li);
}

// Sends the next waiting bulk bundle if the link is free, else wakes up when it is.
void Engine::ServeBulk(std::size_t li) {
  Link& l = links_[li];
  if (l.bulk.empty() || !l.open || l.idle_armed) return;
  if (l.busy_until <= now_) {
    QueuedBulk q = std::move(l.bulk.front());
    l.bulk.pop_front();
    SimNode& n = *nodes_[l.from];
    SendOnLink(n, li, nodes_[l.to]->id, std::move(q.bytes));
    if (l.bulk.empty()) return;
  }
  l.idle_armed = true;
  Push({.at = std::max(l.busy_until, now_ + Duration(1)), .kind = Ev::kLinkIdle, .node = Index32(li)});
}

void Engine::SendOnLink(SimNode& n, std::size_t li, NodeNumber neighbour, std::vector<std::uint8_t> bytes) {
  Link* l = &links_[li];
  const auto contact = plan_.ContactAt(n.id, neighbour, now_);
  const std::uint64_t rate = contact ? contact->rate_bytes_per_s : 1'000'000'000;
  const DtnTime begin = std::max(now_, l->busy_until);
  const Duration send_time(static_cast<std::int64_t>((bytes.size() * 1000 + rate - 1) / rate));
  const DtnTime done = begin + send_time;
  l->busy_until = done;
  if (contact && done > contact->end) {
    ++r_.bundles_lost;
    return;
  }
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (l->loss > 0 && u(rng_) < l->loss) {
    ++r_.bundles_lost;
    return;
  }
  DtnTime arrive = done + plan_.OwltAt(n.id, neighbour, done).value_or(Duration(0));
  if (l->reorder > 0 && u(rng_) < l->reorder && l->reorder_delay_max.count() > 0) {
    arrive += Duration(static_cast<std::int64_t>(rng_() % static_cast<std::uint64_t>(l->reorder_delay_max.count() + 1)));
  }
  const bool duplicate = l->duplication > 0 && u(rng_) < l->duplication;
  const Event e{.at = arrive, .kind = Ev::kArrive, .node = Index32(l->to), .other = Index32(n.index),
                .a = static_cast<std::int64_t>(l->closes), .b = done.millis()};
  if (duplicate) {
    ++r_.bundles_duplicated;
    Event copy = e;
    copy.at = arrive + Duration(1 + static_cast<std::int64_t>(rng_() % 1000));
    Push(copy, Payload{.bytes = bytes});
  }
  Push(e, Payload{.bytes = std::move(bytes)});
}

void Engine::StartBulk(SimNode& n, const BulkTransfer& b) {
  ++r_.bulk.transfers;
  if (!n.up || !n.node) {
    ++r_.bulk.transfers_lost;
    if (o_.record_events) Record(n, json{{"type", "bulk"}, {"event", "transfer_lost"}, {"to", b.to}, {"reason", "sender down"}});
    return;
  }
  const NodeNumber to = s_.FindNode(b.to)->id;  // Setup checked the name
  if (o_.record_events) Record(n, json{{"type", "bulk"}, {"event", "transfer"}, {"to", b.to}, {"bytes", b.size_bytes}});
  for (std::uint64_t offset = 0; offset < b.size_bytes; offset += kBulkChunkBytes) {
    dtn::SendRequest req;
    req.source = dtn::Eid::Ipn(n.id, kBulkService);
    req.destination = dtn::Eid::Ipn(to, kBulkService);
    req.priority = dtn::Priority::kBulk;
    req.lifetime = kBulkLifetime;
    req.payload.assign(static_cast<std::size_t>(std::min<std::uint64_t>(kBulkChunkBytes, b.size_bytes - offset)), 0);
    if (n.node->Send(req, Local(n))) {
      ++r_.bulk.bundles_sent;
    } else {
      ++r_.bulk.bundles_refused;
    }
  }
  Pump(n);
}

void Engine::Acknowledge(SimNode& n, const dtn::Acknowledge& a) {
  Link* l = FindLink(n.index, a.neighbour);
  if (l == nullptr || !l->open) return;
  std::uniform_real_distribution<double> u(0.0, 1.0);
  if (l->loss > 0 && u(rng_) < l->loss) return;
  const DtnTime arrive = now_ + plan_.OwltAt(n.id, a.neighbour, now_).value_or(Duration(0));
  Push({.at = arrive, .kind = Ev::kAck, .node = Index32(l->to), .other = Index32(n.index)}, Payload{.id = a.id});
}

void Engine::Arm(SimNode& n) {
  if (!n.up || !n.node) return;
  std::optional<DtnTime> next = n.node->NextDeadline();
  auto take = [&](std::optional<DtnTime> d) {
    if (d && (!next || *d < *next)) next = d;
  };
  if (n.lease) take(n.lease->NextDeadline());
  if (n.agent) take(n.agent->NextDeadline());
  if (!next) {
    n.armed.reset();
    return;
  }
  DtnTime at = n.clock.ToTrue(*next, now_);
  at = std::max(at, now_ + Duration(1));
  if (n.armed && *n.armed == at) return;
  n.armed = at;
  ++n.timer_generation;
  if (at <= end_) Push({.at = at, .kind = Ev::kTimer, .node = Index32(n.index), .a = static_cast<std::int64_t>(n.timer_generation)});
}

void Engine::UpdateLink(std::size_t li, int d_open, int d_cut) {
  Link& l = links_[li];
  l.plan_open += d_open;
  l.cut += d_cut;
  const bool open = l.plan_open > 0 && l.cut == 0;
  if (open == l.open) return;
  l.open = open;
  if (!open) {
    ++l.closes;
    l.last_close = now_;
    r_.bundles_lost += l.bulk.size();  // handed to the link, never sent: the sender retransmits
    l.bulk.clear();
  }
  SimNode& n = *nodes_[l.from];
  if (!n.up || !n.node) return;
  if (open) {
    n.node->OnContactStart(nodes_[l.to]->id, Local(n));
  } else {
    n.node->OnContactEnd(nodes_[l.to]->id, Local(n));
  }
  Pump(n);
}

void Engine::Handle(Event& e) {
  switch (e.kind) {
    case Ev::kLinkChange:
      UpdateLink(e.node, static_cast<int>(e.a), static_cast<int>(e.b));
      break;
    case Ev::kArrive: {
      SimNode& n = *nodes_[e.node];
      const SimNode& from = *nodes_[e.other];
      const Link* li = FindLink(e.other, n.id);
      // Lost when the link closed while it was still being sent.
      if (li != nullptr) {
        const Link& l = *li;
        if (static_cast<std::int64_t>(l.closes) != e.a && l.last_close.millis() < e.b) {
          ++r_.bundles_lost;
          break;
        }
      }
      if (!n.up || !n.node) {
        ++r_.bundles_lost;
        break;
      }
      n.node->OnBundleReceived(from.id, payloads_[e.payload].bytes, Local(n));
      Pump(n);
      break;
    }
    case Ev::kAck: {
      SimNode& n = *nodes_[e.node];
      if (!n.up || !n.node) break;
      n.node->OnAcknowledged(nodes_[e.other]->id, *payloads_[e.payload].id, Local(n));
      Pump(n);
      break;
    }
    case Ev::kTimer: {
      SimNode& n = *nodes_[e.node];
      if (!n.up || !n.node || static_cast<std::uint64_t>(e.a) != n.timer_generation) break;
      n.armed.reset();
      const DtnTime local = Local(n);
      n.node->OnTick(local);
      if (n.lease) n.lease->Tick(local);
      if (n.agent) n.agent->Tick(local);
      Pump(n);
      break;
    }
    case Ev::kRequest: {
      const WorkItem& w = work_[e.other];
      SimNode& n = *nodes_[w.rover];
      ++r_.requests;
      if (!n.up || !n.agent) {
        if (o_.record_events) Record(n, json{{"type", "workload"}, {"event", "request_lost"}, {"resource", w.resource.ToString()},
                       {"reason", n.up ? "no usable lease term" : "rover down"}});
        break;
      }
      const std::pair<std::size_t, ResourceName> key{w.rover, w.resource};
      if (o_.record_events) Record(n, json{{"type", "workload"}, {"event", "request"}, {"resource", w.resource.ToString()},
                     {"hold_ms", w.hold.count()}, {"wait_ms", w.wait.count()}});
      if (!pending_.contains(key)) pending_[key] = Pending{now_, w.use_every};
      const DtnTime local = Local(n);
      n.agent->Acquire({w.resource, w.hold, local + w.wait}, local);
      Pump(n);
      break;
    }
    case Ev::kUse: {
      SimNode& n = *nodes_[e.node];
      const ResourceName& resource = payloads_[e.payload].resource;
      auto it = beliefs_.find({e.node, resource});
      if (it == beliefs_.end() || it->second.token != static_cast<FencingToken>(e.a)) break;
      if (n.up && n.agent) {
        auto use = n.agent->MakeUse(resource, "use", Local(n));
        if (!use) break;
        for (std::size_t g : n.guards) SendAdu(n, nodes_[g]->id, coordinator::kGuardService, *use);
        Pump(n);
      }
      Push({.at = now_ + it->second.use_every, .kind = Ev::kUse, .node = e.node, .a = e.a}, Payload{.resource = resource});
      break;
    }
    case Ev::kDown: {
      SimNode& n = *nodes_[e.node];
      if (!n.up) break;
      if (o_.record_events) Record(n, json{{"type", "fault"},
                     {"event", s_.crashes[e.other].kind == CrashKind::kSleep ? "sleep" : "crash"},
                     {"down_for_ms", s_.crashes[e.other].down_for.count()}});
      DestroyCores(n);
      n.up = false;
      break;
    }
    case Ev::kUp: {
      SimNode& n = *nodes_[e.node];
      if (n.up) break;
      n.up = true;
      ++n.figures.restarts;
      if (o_.record_events) Record(n, json{{"type", "fault"}, {"event", s_.crashes[e.other].kind == CrashKind::kSleep ? "wake" : "restart"}});
      BuildCores(n, true);
      Pump(n);
      break;
    }
    case Ev::kClockFault: {
      SimNode& n = *nodes_[e.node];
      const ClockFault& f = s_.clock_faults[e.other];
      std::optional<std::int64_t> ppb;
      if (f.drift_ppm) ppb = static_cast<std::int64_t>(std::llround(*f.drift_ppm * 1000.0));
      n.clock.Change(now_, ppb, f.step);
      if (o_.record_events) Record(n, json{{"type", "fault"}, {"event", "clock"}, {"step_ms", f.step.count()},
                     {"drift_ppm", f.drift_ppm.value_or(static_cast<double>(n.clock.drift_ppb) / 1000.0)}});
      for (auto& [key, b] : beliefs_) {
        if (key.first == n.index) b.view_end_true = n.clock.ToTrue(b.view_end_local, now_);
      }
      if (n.up) Arm(n);
      break;
    }
    case Ev::kBulk:
      StartBulk(*nodes_[e.node], s_.bulk[e.other]);
      break;
    case Ev::kLinkIdle:
      links_[e.node].idle_armed = false;
      ServeBulk(e.node);
      break;
    case Ev::kReplayInject: {
      SimNode& n = *nodes_[e.node];
      if (!n.up || !n.node) break;
      if (o_.record_events) Record(n, json{{"type", "fault"}, {"event", "replay_old_messages"}, {"count", captured_[e.other].size()}});
      for (auto& [to, payload] : captured_[e.other]) {
        auto m = coordinator::Decode(payload);
        if (!m) continue;
        const bool to_guard = std::holds_alternative<coordinator::Use>(*m);
        SendAdu(n, to, to_guard ? coordinator::kGuardService : coordinator::kLeaseService, *m, payload);
      }
      Pump(n);
      break;
    }
  }
}

std::vector<std::pair<DtnTime, DtnTime>> Union(std::vector<std::pair<DtnTime, DtnTime>> v) {
  std::sort(v.begin(), v.end());
  std::vector<std::pair<DtnTime, DtnTime>> out;
  for (const auto& p : v) {
    if (p.second <= p.first) continue;
    if (!out.empty() && p.first <= out.back().second) {
      out.back().second = std::max(out.back().second, p.second);
    } else {
      out.push_back(p);
    }
  }
  return out;
}
Duration Measure(const std::vector<std::pair<DtnTime, DtnTime>>& u) {
  Duration d{0};
  for (const auto& p : u) d += p.second - p.first;
  return d;
}

std::expected<ReplayResult, std::string> Engine::Run(const std::string& epochlog_path) {
  if (auto ok = Setup(epochlog_path); !ok) return std::unexpected(ok.error());
  std::uint64_t next_progress = o_.progress_every_events;
  for (const Event* top = Top(); top != nullptr && top->at <= end_; top = Top()) {
    Event e = Pop();
    now_ = std::max(now_, e.at);
    ++r_.events;
    Handle(e);
    FreePayload(e.payload);
    if (o_.progress && r_.events >= next_progress) {
      next_progress += o_.progress_every_events;
      o_.progress(now_ - s_.start, r_.events);
    }
  }
  now_ = end_;
  r_.simulated = end_ - s_.start;

  // Close what is still open at the end of the run.
  std::vector<std::pair<std::size_t, ResourceName>> open;
  for (const auto& [key, b] : beliefs_) open.push_back(key);
  for (const auto& key : open) CloseBelief(key.first, key.second, end_);
  std::vector<std::pair<std::size_t, ResourceName>> waiting;
  for (const auto& [key, p] : pending_) waiting.push_back(key);
  for (const auto& key : waiting) ClosePending(key.first, key.second, false);

  // Figures.
  std::sort(latencies_.begin(), latencies_.end());
  r_.latency.count = latencies_.size();
  if (!latencies_.empty()) {
    auto q = [&](double f) {
      const std::size_t k = static_cast<std::size_t>(std::ceil(f * static_cast<double>(latencies_.size())));
      return latencies_[std::min(latencies_.size() - 1, k == 0 ? 0 : k - 1)];
    };
    r_.latency.p50 = q(0.50);
    r_.latency.p90 = q(0.90);
    r_.latency.p99 = q(0.99);
    r_.latency.max = latencies_.back();
  }
  std::map<ResourceName, std::vector<std::pair<DtnTime, DtnTime>>> held;
  for (const auto& h : r_.history.holds) held[h.resource].push_back({h.from, std::min(h.until, end_)});
  std::set<ResourceName> names;
  for (const auto& [k, v] : held) names.insert(k);
  for (const auto& [k, v] : waiting_) names.insert(k);
  for (const auto& w : work_) names.insert(w.resource);
  for (const auto& name : names) {
    ResourceFigures f;
    f.resource = name.ToString();
    const auto hu = Union(held[name]);
    f.held = Measure(hu);
    f.utilization = r_.simulated.count() > 0 ? static_cast<double>(f.held.count()) / static_cast<double>(r_.simulated.count()) : 0;
    // Idle while waiting: the waiting union minus the held union.
    const auto wu = Union(waiting_[name]);
    Duration idle{0};
    std::size_t k = 0;
    for (const auto& w : wu) {
      Duration covered{0};
      while (k < hu.size() && hu[k].second <= w.first) ++k;
      for (std::size_t j = k; j < hu.size() && hu[j].first < w.second; ++j) {
        covered += std::min(hu[j].second, w.second) - std::max(hu[j].first, w.first);
      }
      idle += (w.second - w.first) - covered;
    }
    f.idle_while_waiting = idle;
    f.grants = grants_per_resource_[name];
    r_.resources.push_back(f);
  }
  for (auto& n : nodes_) {
    NodeFigures f = n->figures;
    f.transmissions = n->counters_before.transmissions + (n->node ? n->node->counters().transmissions : 0);
    f.expired = n->counters_before.expired + (n->node ? n->node->counters().expired : 0);
    f.delivered = n->counters_before.delivered + (n->node ? n->node->counters().delivered : 0);
    r_.expired_bundles += f.expired;
    r_.nodes.push_back(f);
  }
  r_.violations = CheckSafety(r_.history);

  // The epoch log, as the real coordinator writes it.
  SimNode& c = *nodes_[coordinator_];
  if (!epochlog_path.empty() && c.memory_log != nullptr) {
    std::filesystem::remove(epochlog_path);
    std::filesystem::remove(epochlog_path + "-wal");
    std::filesystem::remove(epochlog_path + "-shm");
    auto lg = coordinator::SqliteLeaseLog::Open(epochlog_path);
    if (!lg) return std::unexpected(lg.error().message);
    std::vector<coordinator::LogRecord> batch;
    auto flush = [&]() -> std::expected<void, std::string> {
      if (batch.empty()) return {};
      auto ok = (*lg)->Append(batch);
      batch.clear();
      if (!ok) return std::unexpected(ok.error().message);
      return {};
    };
    for (const auto& rec : c.memory_log->events()) {
      if (rec.kind == coordinator::EventKind::kEpochStart) {
        if (auto ok = flush(); !ok) return std::unexpected(ok.error());
        if (auto ok = (*lg)->StartEpoch(rec.reason, rec.at); !ok) return std::unexpected(ok.error().message);
      } else {
        batch.push_back(rec);
        if (batch.size() >= 50'000) {
          if (auto ok = flush(); !ok) return std::unexpected(ok.error());
        }
      }
    }
    if (auto ok = flush(); !ok) return std::unexpected(ok.error());
  }
  if (o_.record_events) r_.timeline_svg = RenderTimeline(s_, r_, plan_, end_);

  // Destroy cores before their stores; remove the temp directory.
  for (auto& n : nodes_) DestroyCores(*n);
  nodes_.clear();
  if (!temp_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(temp_dir_, ec);
  }
  return std::move(r_);
}

}  // namespace

std::expected<ReplayResult, std::string> RunReplay(const Scenario& scenario, const ReplayOptions& options,
                                                   const std::string& epochlog_path) {
  Engine engine(scenario, options);
  return engine.Run(epochlog_path);
}

}  // namespace ics::scenarios
