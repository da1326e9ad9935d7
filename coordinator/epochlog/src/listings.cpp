// The listing verbs. Each streams rows from one query in seq order and keeps only what the verb
// needs to relate rows (the current epoch; one resource's lease and waiters; one request's
// events), bounded, so the cost is one pass and the memory does not grow with the log.
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "clock/time.h"
#include "epochlog/commands.h"

namespace ics::epochlog {
namespace {

using coordinator::EventKind;

constexpr std::size_t kMaxTrackedWaiters = 100'000;
constexpr std::size_t kMaxEpochsTable = 1'000'000;
constexpr std::size_t kMaxEventsPerRequest = 1'000;

std::string_view Clip(std::string_view text) {
  return text.size() > kMaxTextBytes ? text.substr(0, kMaxTextBytes) : text;
}

// The deny reason's name: "deadline_passed: ..." -> "deadline_passed".
std::string_view ReasonName(std::string_view reason) {
  const auto colon = reason.find(':');
  return colon == std::string_view::npos ? reason : reason.substr(0, colon);
}

bool ContainsWord(std::string_view text, std::string_view word) {
  std::string lower(text);
  for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return lower.find(word) != std::string::npos;
}

}  // namespace

std::expected<std::int64_t, Error> ParseTimeArg(std::string_view text) {
  const bool digits = !text.empty() && std::all_of(text.begin() + (text[0] == '-' ? 1 : 0), text.end(),
                                                   [](char c) { return c >= '0' && c <= '9'; }) &&
                      text != "-";
  if (digits) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec == std::errc() && end == text.data() + text.size()) return value;
    return std::unexpected(Error{Error::Kind::kUsage, fmt::format("time '{}': out of range", text)});
  }
  auto parsed = clock::DtnTime::ParseIso8601(text);
  if (!parsed) {
    return std::unexpected(Error{Error::Kind::kUsage,
                                 fmt::format("time '{}': not UTC ISO-8601 nor DTN milliseconds ({})", text,
                                             parsed.error())});
  }
  return parsed->millis();
}

std::expected<coordinator::ResourceName, Error> ParseResourceArg(std::string_view text) {
  auto name = coordinator::ParseResourceName(text);
  if (!name) {
    return std::unexpected(Error{Error::Kind::kUsage, fmt::format("resource '{}': {}", text, name.error())});
  }
  return *name;
}

// --- epochs ------------------------------------------------------------------------------------

std::string_view EpochCause(std::string_view reason, bool first, std::uint64_t restored_leases,
                            std::uint64_t restored_waiters) {
  if (ContainsWord(reason, "restore")) return "restore";
  if (restored_leases > 0 || restored_waiters > 0 || ContainsWord(reason, "crash")) return "restart after crash";
  if (first) return "start";
  return "restart";
}

namespace {

struct EpochStats {
  std::int64_t epoch = 0;
  std::optional<std::int64_t> start_seq;
  std::optional<std::int64_t> started_ms;
  std::string reason;
  std::uint64_t restored_leases = 0;
  std::uint64_t restored_waiters = 0;
  std::uint64_t grants = 0;
  std::uint64_t events = 0;
};

class EpochLister {
 public:
  EpochLister(Sink& sink, const OutputOptions& output)
      : rows_(sink, output,
              {{"epoch", Column::Kind::kInt, 5},
               {"started", Column::Kind::kTime, 24},
               {"met_ms", Column::Kind::kDuration, 16},
               {"cause", Column::Kind::kText, 19},
               {"restored_leases", Column::Kind::kInt, 15},
               {"restored_waiters", Column::Kind::kInt, 16},
               {"granted", Column::Kind::kInt, 7},
               {"events", Column::Kind::kInt, 8},
               {"seq", Column::Kind::kInt, 8},
               {"reason", Column::Kind::kText, 0}}) {}

  std::map<std::int64_t, std::pair<std::string, std::int64_t>> table;  // the epochs table: reason, started

  bool Emit(const EpochStats& e) {
    // Epochs the epochs table knows but the events do not (a crash between the increment and the
    // epoch_start event) come out in order, before the next logged one.
    while (!table.empty() && table.begin()->first < e.epoch) {
      EpochStats missing;
      missing.epoch = table.begin()->first;
      missing.reason = table.begin()->second.first + " (no epoch_start event: stopped before logging it)";
      missing.started_ms = table.begin()->second.second;
      table.erase(table.begin());
      if (!Write(missing)) return false;
    }
    EpochStats out = e;
    if (const auto it = table.find(e.epoch); it != table.end()) {
      if (!out.started_ms) out.started_ms = it->second.second;
      if (out.reason.empty()) out.reason = it->second.first;
      table.erase(it);
    }
    return Write(out);
  }

  bool FlushTable() {
    while (!table.empty()) {
      EpochStats missing;
      missing.epoch = table.begin()->first;
      missing.reason = table.begin()->second.first + " (no epoch_start event: stopped before logging it)";
      missing.started_ms = table.begin()->second.second;
      table.erase(table.begin());
      if (!Write(missing)) return false;
    }
    return rows_.Finish();
  }

 private:
  bool Write(const EpochStats& e) {
    if (!first_start_ && e.started_ms) first_start_ = e.started_ms;
    const std::string_view cause = EpochCause(e.reason, !any_, e.restored_leases, e.restored_waiters);
    any_ = true;
    const Field fields[] = {Field::Int(e.epoch),
                            Field::Int(e.started_ms),
                            e.started_ms && first_start_ ? Field::Int(*e.started_ms - *first_start_) : Field::Null(),
                            Field::Text(cause),
                            Field::Int(static_cast<std::int64_t>(e.restored_leases)),
                            Field::Int(static_cast<std::int64_t>(e.restored_waiters)),
                            Field::Int(static_cast<std::int64_t>(e.grants)),
                            Field::Int(static_cast<std::int64_t>(e.events)),
                            Field::Int(e.start_seq),
                            Field::Text(Clip(e.reason))};
    return rows_.Row(fields);
  }

  RowWriter rows_;
  std::optional<std::int64_t> first_start_;
  bool any_ = false;
};

}  // namespace

std::expected<void, Error> ListEpochs(LogReader& reader, Sink& sink, const OutputOptions& output) {
  EpochLister lister(sink, output);
  // The epochs table (storage::EpochStore) may hold an epoch whose epoch_start event never made it.
  if (auto st = reader.Prepare("SELECT epoch, reason, started_dtn_ms FROM epochs ORDER BY epoch"); st) {
    for (;;) {
      auto more = st->Step();
      if (!more || !*more || lister.table.size() >= kMaxEpochsTable) break;
      lister.table.emplace(st->Int(0), std::pair{std::string(Clip(st->TextView(1))), st->Int(2)});
    }
  }
  auto st = reader.Prepare(
      "SELECT seq, epoch, kind, at_dtn_ms, token IS NOT NULL, CASE WHEN kind = 'epoch_start' THEN reason END "
      "FROM events ORDER BY seq");
  if (!st) return std::unexpected(st.error());
  std::optional<EpochStats> current;
  for (;;) {
    auto more = st->Step();
    if (!more) return std::unexpected(reader.FromStorage(more.error()));
    if (!*more) break;
    const std::int64_t epoch = st->Int(1);
    const std::string_view kind = st->TextView(2);
    const bool start = kind == "epoch_start";
    if (!current || start || current->epoch != epoch) {
      if (current && !lister.Emit(*current)) return {};
      current = EpochStats{};
      current->epoch = epoch;
      if (start) {
        current->start_seq = st->Int(0);
        current->started_ms = st->Int(3);
        current->reason = std::string(Clip(st->TextView(5)));
      }
    }
    ++current->events;
    if (kind == "grant") ++current->grants;
    if (kind == "restore") ++(st->Int(4) != 0 ? current->restored_leases : current->restored_waiters);
  }
  if (current && !lister.Emit(*current)) return {};
  lister.FlushTable();
  return {};
}

// --- leases ------------------------------------------------------------------------------------

std::expected<void, Error> ListLeases(LogReader& reader, Sink& sink, const OutputOptions& output,
                                      const LeaseQuery& query) {
  EventFilter filter;
  filter.resource = query.resource;
  filter.rover = query.rover;
  filter.since_ms = query.since_ms;
  filter.until_ms = query.until_ms;
  filter.epoch = query.epoch;
  filter.exclude_epoch_starts = true;
  auto cursor = reader.Events(filter);
  if (!cursor) return std::unexpected(cursor.error());

  const bool table = output.format == Format::kTable;
  std::vector<Column> columns = {{"seq", Column::Kind::kInt, 8},       {"at", Column::Kind::kTime, 24},
                                 {"epoch", Column::Kind::kInt, 5},     {"kind", Column::Kind::kText, 11},
                                 {"resource", Column::Kind::kText, 20}, {"rover", Column::Kind::kInt, 5},
                                 {"request_id", Column::Kind::kInt, 10}, {"token", Column::Kind::kInt, 5},
                                 {"expires", Column::Kind::kTime, 24}};
  if (!table) {
    columns.push_back({"term_ms", Column::Kind::kDuration, 0});
    columns.push_back({"deadline", Column::Kind::kTime, 0});
    columns.push_back({"regrant_at", Column::Kind::kTime, 0});
  }
  columns.push_back({"reason", Column::Kind::kText, 0});
  if (!table) columns.push_back({"policy", Column::Kind::kText, 0});
  RowWriter rows(sink, output, std::move(columns));

  std::string resource;
  std::array<Field, 14> slots;
  for (;;) {
    auto next = cursor->Next();
    if (!next) return std::unexpected(next.error());
    const EventRow* r = *next;
    if (r == nullptr) break;
    resource.clear();
    if (r->has_resource) {
      resource.append(r->tenant);
      resource += '/';
      resource.append(r->resource);
    }
    std::size_t n = 0;
    const auto push = [&](Field f) { slots[n++] = f; };
    push(Field::Int(r->seq));
    push(Field::Int(r->at_ms));
    push(Field::Int(r->epoch));
    push(Field::Text(r->kind_text));
    push(r->has_resource ? Field::Text(resource) : Field::Null());
    push(Field::Int(r->rover));
    push(Field::Int(r->request_id));
    push(Field::Int(r->token));
    push(Field::Int(r->lease_expires_ms));
    if (!table) {
      push(Field::Int(r->term_ms));
      push(Field::Int(r->deadline_ms));
      push(Field::Int(r->regrant_at_ms));
    }
    push(Field::Text(Clip(r->reason)));
    if (!table) push(Field::Text(Clip(r->policy)));
    if (!rows.Row(std::span<const Field>(slots.data(), n))) return {};  // the reader went away
  }
  rows.Finish();
  return {};
}

// --- history -----------------------------------------------------------------------------------

std::expected<void, Error> ListHistory(LogReader& reader, Sink& sink, const OutputOptions& output,
                                       const coordinator::ResourceName& resource) {
  EventFilter filter;
  filter.resource = resource;
  auto cursor = reader.Events(filter);
  if (!cursor) return std::unexpected(cursor.error());
  RowWriter rows(sink, output,
                 {{"item", Column::Kind::kText, 5},
                  {"token", Column::Kind::kInt, 5},
                  {"rover", Column::Kind::kInt, 5},
                  {"request_id", Column::Kind::kInt, 10},
                  {"epoch", Column::Kind::kInt, 5},
                  {"from", Column::Kind::kTime, 24},
                  {"to", Column::Kind::kTime, 24},
                  {"ended", Column::Kind::kText, 16},
                  {"held_ms", Column::Kind::kDuration, 12},
                  {"gap_ms", Column::Kind::kDuration, 12},
                  {"waited_ms", Column::Kind::kDuration, 12},
                  {"renewals", Column::Kind::kInt, 8},
                  {"seq", Column::Kind::kInt, 0}});

  struct Lease {
    std::int64_t token = 0, rover = 0, request_id = 0, epoch = 0, from = 0, seq = 0;
    std::int64_t renewals = 0;
    std::optional<std::int64_t> gap, waited;
  };
  std::optional<Lease> lease;
  std::optional<std::int64_t> last_end;
  std::map<std::pair<std::int64_t, std::int64_t>, std::pair<std::int64_t, std::int64_t>> waiting;  // -> at, seq
  std::uint64_t events = 0;

  const auto emit_lease = [&](const Lease& l, std::optional<std::int64_t> to, std::string_view ended) {
    const Field fields[] = {Field::Text("lease"),    Field::Int(l.token),   Field::Int(l.rover),
                            Field::Int(l.request_id), Field::Int(l.epoch),   Field::Int(l.from),
                            Field::Int(to),           Field::Text(ended),    to ? Field::Int(*to - l.from) : Field::Null(),
                            Field::Int(l.gap),        Field::Int(l.waited),  Field::Int(l.renewals),
                            Field::Int(l.seq)};
    return rows.Row(fields);
  };
  const auto emit_wait = [&](std::int64_t rover, std::int64_t request, std::int64_t from, std::int64_t seq,
                             std::optional<std::int64_t> to, std::string_view ended, std::optional<std::int64_t> epoch) {
    const Field fields[] = {Field::Text("wait"),  Field::Null(),       Field::Int(rover),
                            Field::Int(request),  Field::Int(epoch),   Field::Int(from),
                            Field::Int(to),       Field::Text(ended),  Field::Null(),
                            Field::Null(),        to ? Field::Int(*to - from) : Field::Null(),
                            Field::Null(),        Field::Int(seq)};
    return rows.Row(fields);
  };

  for (;;) {
    auto next = cursor->Next();
    if (!next) return std::unexpected(next.error());
    const EventRow* r = *next;
    if (r == nullptr) break;
    ++events;
    if (!r->kind) continue;
    const auto who = std::pair{r->rover.value_or(0), r->request_id.value_or(0)};
    switch (*r->kind) {
      case EventKind::kQueued:
        if (waiting.size() < kMaxTrackedWaiters) waiting[who] = {r->at_ms, r->seq};
        break;
      case EventKind::kGrant: {
        if (!r->token) break;
        if (lease && !emit_lease(*lease, std::nullopt, "superseded")) return {};  // a damaged log
        Lease l;
        l.token = *r->token;
        l.rover = who.first;
        l.request_id = who.second;
        l.epoch = r->epoch;
        l.from = r->at_ms;
        l.seq = r->seq;
        if (last_end) l.gap = r->at_ms - *last_end;
        if (const auto it = waiting.find(who); it != waiting.end()) {
          l.waited = r->at_ms - it->second.first;
          waiting.erase(it);
        }
        lease = l;
        break;
      }
      case EventKind::kRestore:
        if (r->token && !lease) {  // history starting mid-lease (should not happen in a whole log)
          lease = Lease{*r->token, who.first, who.second, r->epoch, r->at_ms, r->seq, 0, std::nullopt, std::nullopt};
        }
        break;
      case EventKind::kRenew:
        if (lease && r->token == lease->token) ++lease->renewals;
        break;
      case EventKind::kRelease:
      case EventKind::kExpiry:
        if (lease && r->token == lease->token) {
          if (!emit_lease(*lease, r->at_ms, *r->kind == EventKind::kRelease ? "released" : "expired")) return {};
          lease.reset();
          last_end = r->at_ms;
        }
        break;
      case EventKind::kDeny:
        if (const auto it = waiting.find(who); it != waiting.end()) {
          if (!emit_wait(who.first, who.second, it->second.first, it->second.second, r->at_ms,
                         ReasonName(r->reason), r->epoch)) {
            return {};
          }
          waiting.erase(it);
        }
        break;
      default: break;
    }
  }
  if (events == 0) {
    return std::unexpected(
        Error{Error::Kind::kNotFound, fmt::format("{}: no event of resource {}", reader.path(), resource.ToString())});
  }
  if (lease && !emit_lease(*lease, std::nullopt, "open")) return {};
  std::vector<std::pair<std::pair<std::int64_t, std::int64_t>, std::pair<std::int64_t, std::int64_t>>> still(
      waiting.begin(), waiting.end());
  std::sort(still.begin(), still.end(), [](const auto& a, const auto& b) { return a.second.second < b.second.second; });
  for (const auto& [who, queued] : still) {
    if (!emit_wait(who.first, who.second, queued.first, queued.second, std::nullopt, "waiting", std::nullopt)) return {};
  }
  rows.Finish();
  return {};
}

// --- explain -----------------------------------------------------------------------------------

namespace {

struct OwnedEvent {
  std::int64_t seq = 0, at_ms = 0, epoch = 0;
  std::optional<EventKind> kind;
  std::string resource;
  std::optional<std::int64_t> token, lease_expires_ms, term_ms, deadline_ms;
  std::string reason, policy;
};

OwnedEvent Own(const EventRow& r) {
  OwnedEvent e;
  e.seq = r.seq;
  e.at_ms = r.at_ms;
  e.epoch = r.epoch;
  e.kind = r.kind;
  if (r.has_resource) e.resource = fmt::format("{}/{}", r.tenant, r.resource);
  e.token = r.token;
  e.lease_expires_ms = r.lease_expires_ms;
  e.term_ms = r.term_ms;
  e.deadline_ms = r.deadline_ms;
  e.reason = std::string(Clip(r.reason));
  e.policy = std::string(Clip(r.policy));
  return e;
}

std::string D(std::int64_t ms) { return clock::FormatDuration(clock::Duration(ms)); }

Explanation Explain(std::int64_t rover, std::int64_t request_id, const std::vector<OwnedEvent>& events) {
  Explanation x;
  x.rover = rover;
  x.request_id = request_id;
  const OwnedEvent* queued = nullptr;
  const OwnedEvent* decided = nullptr;  // grant, deny, stale_epoch, renew, restore
  const OwnedEvent* ended = nullptr;     // release / expiry of the granted lease
  for (const OwnedEvent& e : events) {
    x.seqs.push_back(e.seq);
    if (x.resource.empty()) x.resource = e.resource;
    if (!e.kind) continue;
    switch (*e.kind) {
      case EventKind::kQueued:
        if (!queued) queued = &e;
        break;
      case EventKind::kGrant:
      case EventKind::kDeny:
      case EventKind::kStaleEpoch:
      case EventKind::kRenew:
        if (!decided || decided->kind == EventKind::kRestore) decided = &e;
        break;
      case EventKind::kRestore:
        if (!decided) decided = &e;
        break;
      case EventKind::kRelease:
      case EventKind::kExpiry: ended = &e; break;
      default: break;
    }
  }
  const std::string waited =
      queued && decided && decided->seq > queued->seq
          ? fmt::format(" after waiting {} in the queue (queued at {})", D(decided->at_ms - queued->at_ms),
                        FormatUtc(queued->at_ms))
          : std::string();
  const std::string end_text =
      ended ? fmt::format("; the lease {} at {}", ended->kind == EventKind::kRelease ? "was released" : "expired",
                          FormatUtc(ended->at_ms))
            : std::string();
  if (decided == nullptr && queued != nullptr) {
    x.outcome = "queued";
    x.summary = fmt::format("queued at {} ({}) and still waiting at the end of the log", FormatUtc(queued->at_ms),
                            queued->reason);
    x.reason = queued->reason;
    x.policy = queued->policy;
  } else if (decided == nullptr && ended != nullptr) {
    x.outcome = ended->kind == EventKind::kRelease ? "released" : "expired";
    x.summary = fmt::format("lease token {} {} at {}", ended->token.value_or(0), x.outcome, FormatUtc(ended->at_ms));
    x.reason = ended->reason;
    x.policy = ended->policy;
  } else if (decided == nullptr) {
    x.outcome = "unknown";
    x.summary = "no deciding event in the log";
  } else {
    x.reason = decided->reason;
    x.policy = decided->policy;
    switch (*decided->kind) {
      case EventKind::kGrant:
        x.outcome = "granted";
        x.summary = fmt::format("granted token {} at {} in epoch {}, term {}, lease until {} (coordinator's view){}{}",
                                decided->token.value_or(0), FormatUtc(decided->at_ms), decided->epoch,
                                D(decided->term_ms.value_or(0)), FormatUtc(decided->lease_expires_ms.value_or(0)),
                                waited, end_text);
        break;
      case EventKind::kRestore:
        x.outcome = "granted";
        x.summary = fmt::format("lease token {} restored at {} in epoch {} (granted in an earlier epoch){}",
                                decided->token.value_or(0), FormatUtc(decided->at_ms), decided->epoch, end_text);
        break;
      case EventKind::kRenew:
        x.outcome = "renewed";
        x.summary = fmt::format("renewed token {} at {}: term {}, lease until {}", decided->token.value_or(0),
                                FormatUtc(decided->at_ms), D(decided->term_ms.value_or(0)),
                                FormatUtc(decided->lease_expires_ms.value_or(0)));
        break;
      case EventKind::kStaleEpoch:
        x.outcome = "refused";
        x.summary = fmt::format("refused at {} and not acted upon: {}", FormatUtc(decided->at_ms), decided->reason);
        break;
      default: {
        const std::string_view name = ReasonName(decided->reason);
        x.outcome = name == "bad_request" ? "refused" : "denied";
        x.summary = fmt::format("{} at {} ({}){}", x.outcome, FormatUtc(decided->at_ms), name, waited);
        if (x.policy.empty() && queued) x.policy = queued->policy;
        break;
      }
    }
  }
  return x;
}

}  // namespace

std::expected<std::vector<Explanation>, Error> ExplainRequests(LogReader& reader, const ExplainQuery& query) {
  std::optional<std::int64_t> request_id = query.request_id;
  std::optional<std::int64_t> rover = query.rover;
  if (!request_id) {
    if (!rover || !query.at_ms) {
      return std::unexpected(Error{Error::Kind::kUsage, "explain needs a REQUEST-ID, or --rover N and --at T"});
    }
    EventFilter last;
    last.rover = rover;
    last.until_ms = query.at_ms;
    last.exclude_epoch_starts = true;
    last.newest_first = true;
    last.limit = 64;
    auto cursor = reader.Events(last);
    if (!cursor) return std::unexpected(cursor.error());
    for (;;) {
      auto next = cursor->Next();
      if (!next) return std::unexpected(next.error());
      if (*next == nullptr) break;
      if ((*next)->request_id) {
        request_id = (*next)->request_id;
        break;
      }
    }
    if (!request_id) {
      return std::unexpected(Error{Error::Kind::kNotFound,
                                   fmt::format("{}: no request of rover {} at or before {}", reader.path(), *rover,
                                               FormatUtc(*query.at_ms))});
    }
  }
  EventFilter filter;
  filter.request_id = request_id;
  filter.rover = rover;
  auto cursor = reader.Events(filter);
  if (!cursor) return std::unexpected(cursor.error());
  std::map<std::int64_t, std::vector<OwnedEvent>> by_rover;
  for (;;) {
    auto next = cursor->Next();
    if (!next) return std::unexpected(next.error());
    const EventRow* r = *next;
    if (r == nullptr) break;
    const std::int64_t who = r->rover.value_or(0);
    auto it = by_rover.find(who);
    if (it == by_rover.end()) {
      if (by_rover.size() >= kMaxExplained) continue;
      it = by_rover.emplace(who, std::vector<OwnedEvent>{}).first;
    }
    if (it->second.size() < kMaxEventsPerRequest) it->second.push_back(Own(*r));
  }
  if (by_rover.empty()) {
    return std::unexpected(Error{Error::Kind::kNotFound,
                                 rover ? fmt::format("{}: no request {} of rover {}", reader.path(), *request_id, *rover)
                                       : fmt::format("{}: no request {}", reader.path(), *request_id)});
  }
  std::vector<Explanation> out;
  for (const auto& [who, events] : by_rover) out.push_back(Explain(who, *request_id, events));
  return out;
}

std::expected<void, Error> WriteExplanations(const std::vector<Explanation>& explanations, Sink& sink,
                                             const OutputOptions& output) {
  if (output.format == Format::kTable) {
    std::string text;
    for (const Explanation& x : explanations) {
      text += fmt::format("request {} of rover {} on {}: {}\n", x.request_id, x.rover,
                          x.resource.empty() ? "-" : x.resource, x.outcome);
      text += fmt::format("  what:   {}\n", OneLine(x.summary));
      if (!x.reason.empty()) text += fmt::format("  why:    {}\n", OneLine(x.reason));
      if (!x.policy.empty()) text += fmt::format("  policy: {}\n", OneLine(x.policy));
      text += fmt::format("  events: seq {}\n", fmt::join(x.seqs, ", "));
    }
    sink.Write(text);
    return {};
  }
  RowWriter rows(sink, output,
                 {{"rover", Column::Kind::kInt, 0},
                  {"request_id", Column::Kind::kInt, 0},
                  {"resource", Column::Kind::kText, 0},
                  {"outcome", Column::Kind::kText, 0},
                  {"summary", Column::Kind::kText, 0},
                  {"reason", Column::Kind::kText, 0},
                  {"policy", Column::Kind::kText, 0},
                  {"seqs", Column::Kind::kText, 0}});
  for (const Explanation& x : explanations) {
    const std::string seqs = fmt::format("{}", fmt::join(x.seqs, " "));
    const Field fields[] = {Field::Int(x.rover),     Field::Int(x.request_id), Field::Text(x.resource),
                            Field::Text(x.outcome),  Field::Text(x.summary),   Field::Text(x.reason),
                            Field::Text(x.policy),   Field::Text(seqs)};
    if (!rows.Row(fields)) break;
  }
  rows.Finish();
  return {};
}

}  // namespace ics::epochlog
