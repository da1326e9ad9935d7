// Contact plans in the format of ION's (`ionrc` `a contact` and `a range` lines): when each
// directed link is up and at what rate, and the one-way light time (OWLT) between node pairs.
// A plan is the input of contact graph routing (dtn/routing.h) and of the light-time and
// contact-wait bounds that the clock/ TimeoutPolicy uses (PathBoundsBetween below).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "clock/light_time.h"
#include "clock/time.h"
#include "clock/timeout_policy.h"

namespace ics::dtn {

using clock::DtnTime;
using clock::Duration;
using clock::NodeNumber;

// One `a contact START END FROM TO RATE [CONFIDENCE]` line: the directed link FROM -> TO can
// carry RATE bytes per second during [start, end). Contacts are directional, as in ION.
// Invariants (checked by ContactPlan, which aborts on a broken one; the parser reports them as
// errors): start < end, from > 0, to > 0, rate_bytes_per_s > 0, 0 <= confidence <= 1.
// from == to is allowed (ION plans declare loopback contacts); routing never uses them.
struct Contact {
  DtnTime start;
  DtnTime end;  // exclusive
  NodeNumber from = 0;
  NodeNumber to = 0;
  std::uint64_t rate_bytes_per_s = 0;
  double confidence = 1.0;  // ION's optional last field; kept, not used by routing
  bool operator==(const Contact&) const = default;
};

// A contact plan error: where (source name, 1-based line and column; line 0 when the error is
// about the whole input, e.g. an unreadable file) and what.
struct PlanError {
  std::string source;
  int line = 0;
  int column = 0;
  std::string message;
  // "plan.txt:3:12: node number must be > 0 (got '0')", or "plan.txt: cannot open: ..." when
  // line is 0.
  std::string ToString() const;
};

// Bounds on what the parser accepts, so a hostile or corrupt plan costs bounded memory.
inline constexpr std::size_t kPlanLinesMax = 1'000'000;
inline constexpr std::size_t kPlanLineLengthMax = 4096;
inline constexpr std::uintmax_t kPlanFileBytesMax = 256ull << 20;  // LoadContactPlan only
// Times and OWLTs are at most this many seconds from the plan epoch (about 31,700 years), so
// every DtnTime the plan holds stays far inside DtnTime::Max().
inline constexpr std::int64_t kPlanSecondsMax = 1'000'000'000'000;

// An immutable-after-construction set of contacts and ranges with the queries routing asks.
// Thread-safety: const methods may be called concurrently; mutation (Add*) needs exclusive access.
class ContactPlan {
 public:
  ContactPlan() = default;
  // Sorts and indexes once: O(n log n). Aborts if a contact or range breaks its invariants
  // (range: start < end, a > 0, b > 0, owlt >= 0).
  ContactPlan(std::vector<Contact> contacts, std::vector<clock::RangeEntry> ranges);

  // Incremental forms for tests and small programmatic plans: O(n) each (sorted insertion).
  void AddContact(const Contact& contact);
  void AddRange(const clock::RangeEntry& range);

  // All contacts, sorted by (from, start, to, end, rate). A contact's index in this vector is
  // its id for RouteOptions::excluded_contacts and RouteHop::contact_index; ids change when a
  // contact is added.
  const std::vector<Contact>& contacts() const { return contacts_; }
  // All ranges, in the order given (a and b as written).
  const std::vector<clock::RangeEntry>& ranges() const { return ranges_; }
  // The ranges as a light-time model (clock::LightTimeModel), e.g. for the timeout policy.
  const clock::RangeTable& range_table() const { return range_table_; }

  // The contacts leaving `from`, sorted by (start, to, end); a view into contacts(), whose
  // first element has index ContactsFromBegin(from) and whose end is ContactsFromEnd(from).
  // O(log N) for N nodes sending in the plan.
  std::span<const Contact> ContactsFrom(NodeNumber from) const;
  std::size_t ContactsFromBegin(NodeNumber from) const;
  std::size_t ContactsFromEnd(NodeNumber from) const;
  // The index in contacts() of the first contact leaving `from` that may still be open after t:
  // every contact of ContactsFrom(from) before that index ends at or before t (later ones may
  // too: the index is that of the first contact whose end, or the end of one before it, is
  // after t). ContactsFromEnd(from) when every contact from `from` has ended by t.
  // O(log C) for C contacts: searches over a long plan start here instead of at the plan's
  // first contact, so their cost does not grow with the part of the plan that lies behind t.
  std::size_t ContactsFromNotEndedBy(NodeNumber from, DtnTime t) const;
  // The index of the first contact in contacts()[i, end) that has not ended by t (end > t);
  // `end` when there is none. REQUIRES: i <= end <= contacts().size(). Skips ended contacts a
  // block of kEndBlock at a time (a block whose latest end is at or before t), so a search
  // starting behind a long contact (whose end keeps ContactsFromNotEndedBy early) does not walk
  // every short pass that ended since it began.
  static constexpr std::size_t kEndBlock = 32;
  std::size_t NextNotEndedBy(std::size_t i, std::size_t end, DtnTime t) const;
  // Whether some contact of the plan (a loopback one included) has `to` as its receiver. O(log N).
  bool HasContactsTo(NodeNumber to) const { return std::binary_search(destinations_.begin(), destinations_.end(), to); }
  // The contacts from a to b (that direction only), sorted by start.
  std::vector<Contact> ContactsBetween(NodeNumber a, NodeNumber b) const;
  // A contact from -> to open at t (start <= t < end); of several, the one with the highest rate.
  std::optional<Contact> ContactAt(NodeNumber from, NodeNumber to, DtnTime t) const;
  bool IsLinkOpen(NodeNumber from, NodeNumber to, DtnTime t) const {
    return ContactAt(from, to, t).has_value();
  }
  // The earliest instant >= t at which a contact from -> to is open: t itself when one is open
  // at t; nullopt when none opens at or after t.
  std::optional<DtnTime> NextContactStart(NodeNumber from, NodeNumber to, DtnTime t) const;

  // The OWLT between a and b at t (either direction: a range holds both ways): the largest OWLT
  // of the ranges of that pair covering t (start <= t < end); nullopt when no range covers t.
  // This and NextRangeChange cost O(log P + log R) for P node pairs with ranges and R ranges of
  // the pair, plus the ranges of the pair that start before t and end after t.
  std::optional<Duration> OwltAt(NodeNumber a, NodeNumber b, DtnTime t) const;
  // The first instant after t at which a range of the pair a-b starts or ends, i.e. the end of
  // the interval over which OwltAt(a, b, .) is constant from t on; nullopt when none does.
  std::optional<DtnTime> NextRangeChange(NodeNumber a, NodeNumber b, DtnTime t) const;
  // Both at once, for a caller that needs both (route search): one lookup instead of two.
  struct RangeState {
    std::optional<Duration> owlt;        // OwltAt(a, b, t)
    std::optional<DtnTime> next_change;  // NextRangeChange(a, b, t)
  };
  RangeState RangeStateAt(NodeNumber a, NodeNumber b, DtnTime t) const;
  // RangeStateAt(c.from, c.to, t) for c = contacts()[contact_index], without looking the pair up
  // (each contact knows its pair's ranges: a route search asks this for every contact it offers).
  // REQUIRES: contact_index < contacts().size().
  RangeState ContactRangeStateAt(std::size_t contact_index, DtnTime t) const;

  bool empty() const { return contacts_.empty() && ranges_.empty(); }
  // The earliest contact start and the latest contact end (nullopt without contacts).
  std::optional<DtnTime> FirstStart() const;
  std::optional<DtnTime> LastEnd() const;

 private:
  // A range with a <= b, sorted by (lo, hi, start); end_max is the largest end among the
  // entries of the same pair up to and including this one, so a lookup can stop scanning back.
  struct PairRange {
    NodeNumber lo = 0;
    NodeNumber hi = 0;
    DtnTime start;
    DtnTime end;
    Duration owlt{0};
    DtnTime end_max;
  };
  // The contacts of one sending node: contacts_[begin, end).
  struct FromGroup {
    NodeNumber from = 0;
    std::size_t begin = 0;
    std::size_t end = 0;
  };
  // The ranges of one pair: pair_ranges_[begin, end).
  struct PairGroup {
    NodeNumber lo = 0;
    NodeNumber hi = 0;
    std::size_t begin = 0;
    std::size_t end = 0;
  };
  void SortContacts();  // by ContactKey (contact_plan.cpp)
  void ReindexContacts();
  void ReindexRanges();
  void ReindexContactPairs();  // after either of the above
  static RangeState RangeStateIn(std::span<const PairRange> pair, DtnTime t);
  const FromGroup* GroupOf(NodeNumber from) const;
  std::span<const PairRange> RangesOf(NodeNumber a, NodeNumber b) const;
  std::uint32_t PairGroupIndex(NodeNumber a, NodeNumber b) const;  // kNoPair when no range

  std::vector<Contact> contacts_;
  // Parallel to contacts_: the largest end among the contacts of the same sender up to and
  // including this one (non-decreasing within a sender, so it can be binary searched).
  std::vector<DtnTime> end_max_;
  // block_end_max_[k]: the largest end among contacts_[k * kEndBlock, (k + 1) * kEndBlock).
  std::vector<DtnTime> block_end_max_;
  std::vector<FromGroup> from_groups_;  // sorted by from
  std::vector<NodeNumber> destinations_;  // the `to` of every contact, sorted, unique
  std::vector<clock::RangeEntry> ranges_;
  std::vector<PairRange> pair_ranges_;
  std::vector<PairGroup> pair_groups_;  // sorted by (lo, hi)
  // Parallel to contacts_: the index in pair_groups_ of the contact's pair (kNoPair: no range).
  static constexpr std::uint32_t kNoPair = std::numeric_limits<std::uint32_t>::max();
  std::vector<std::uint32_t> contact_pair_;
  clock::RangeTable range_table_;
};

// Parses a contact plan. Accepted lines (tokens separated by spaces or tabs; leading and
// trailing whitespace, blank lines, `#` comment lines and `#` comments after the last token
// are ignored; "\r\n" line ends are accepted):
//   a contact START END FROM TO RATE [CONFIDENCE]   RATE: bytes/s, integer > 0
//   a range   START END FROM TO OWLT                 OWLT: seconds, integer or decimal (ms)
// START and END: `+SECONDS` relative to plan_epoch (integer or decimal, millisecond precision),
// ION's absolute `yyyy/mm/dd-hh:mm:ss` (UTC), or ISO-8601 UTC (clock::DtnTime::ParseIso8601).
// Any other command (ION's `m`, `d`, `x`, `s`, ... or `a` of another kind) is an error.
// Errors name source_name, the line and the column of the offending token; the first error
// stops parsing. Input beyond kPlanLinesMax lines or a line longer than kPlanLineLengthMax
// bytes is an error.
std::expected<ContactPlan, PlanError> ParseContactPlan(std::string_view text, std::string_view source_name,
                                                       DtnTime plan_epoch);

// Reads and parses a plan file (at most kPlanFileBytesMax bytes). Errors name the path.
std::expected<ContactPlan, PlanError> LoadContactPlan(const std::filesystem::path& path, DtnTime plan_epoch);

// What ParseContactPlan reads, in the text's order, before it builds the plan: for a caller that
// adds entries of its own (the replayer's orbital ranges) and then builds the plan once.
struct PlanEntries {
  std::vector<Contact> contacts;
  std::vector<clock::RangeEntry> ranges;
};
std::expected<PlanEntries, PlanError> ParseContactPlanEntries(std::string_view text, std::string_view source_name,
                                                              DtnTime plan_epoch);

// The light-time and contact-wait bounds of the path between a and b over the departure
// interval [from, to], for the clock/ TimeoutPolicy. Computed from the earliest-arrival routes
// (FindRoute in dtn/routing.h, default RouteOptions, no expiry) of a message of size_bytes,
// in both directions (a -> b and b -> a):
//   1. t := from. Find the earliest-arrival route R at departure t, its one-way delay
//      D(t) = arrival - t and its light time W(t) = the sum of its hop OWLTs.
//   2. Compute L, the latest departure at which R is still usable with every hop inside the
//      same contact and the same range interval (a backward pass over R's hops). On [t, L]
//      R's delay cannot grow (waiting only shifts departures later), and the earliest-arrival
//      delay is at most R's, so D(t) bounds the delay of any departure in [t, L].
//   3. t := L + 1 ms and repeat while t <= to (all plan times are whole milliseconds, so the
//      departures [from, to] are covered exactly).
// Result: owlt.min / owlt.max = the smallest / largest W(t) over the routes found;
// contact_wait_max = the largest D(t) - W(t): waiting for contacts at the source and at relays
// plus transmission time. Hence owlt.max + contact_wait_max >= the one-way delay of any such
// message sent at any instant of [from, to] in either direction.
// Error (a message naming the direction and instant) when from > to, when for some departure
// in [from, to] no route exists in the plan, or after kPathBoundsRoutesMax routes.
inline constexpr std::size_t kPathBoundsRoutesMax = 100'000;
std::expected<clock::PathBounds, std::string> PathBoundsBetween(const ContactPlan& plan, NodeNumber a,
                                                                NodeNumber b, DtnTime from, DtnTime to,
                                                                std::uint64_t size_bytes = 0);

}  // namespace ics::dtn
