// The verifier: one pass over `events` in seq order, keeping a few words per resource (its last
// token, its open lease, its regrant time), so ten million events verify in seconds and constant
// memory. Why each rule holds for a log the real coordinator wrote (lease_core.h):
//  - An epoch_start is appended right after the durable increment, so epoch_starts rise, and the
//    core of epoch E writes only events of epoch E until the next start (StartEpoch flushes first).
//  - Grants take ++last_token, restored across restarts: tokens strictly rise per resource.
//  - GrantTo aborts unless the resource has no lease and now >= hold_until, and hold_until is the
//    regrant_at of the lease that ended last: no grant overlaps, none precedes regrant_at.
//  - Renew/release/expiry events are written only for the current lease (a renewal of another
//    token is a deny). Receive handles due expiries first, so no renewal at or after the expiry
//    instant; an expiry is written when Tick(now >= expires) runs.
//  - The constructor of the core of a new epoch emits a restore for every lease in the table, and
//    its records are the first the driver appends in that epoch: a lease open when an epoch starts
//    is restored before anything else of that epoch is logged, or the run logged nothing at all.
//  - The resources/leases tables are updated in the same transaction as the events (the same
//    rules as ApplyToTable), so in one read snapshot they agree with a replay of the events.
#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <future>
#include <system_error>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "coordinator/sqlite_lease_log.h"
#include "epochlog/commands.h"
#include "storage/epoch_store.h"
#include "storage/schema.h"

namespace ics::epochlog {
namespace {

using coordinator::EventKind;

constexpr std::size_t kMaxStoredTextBytes = 64 * 1024;  // as the coordinator's own reader bounds it
constexpr std::size_t kMaxActiveEpochsTracked = 1'000'000;
// The core refuses beyond Limits::max_resources (100,000); far more in a log is damage, and the
// verifier's memory stays bounded.
constexpr std::size_t kMaxResourcesTracked = 2'000'000;

struct OpenLease {
  std::int64_t token = 0;
  std::int64_t rover = 0;
  std::int64_t request_id = 0;
  std::int64_t grant_seq = 0;
  std::int64_t expires_ms = 0;
  std::int64_t live_epoch = 0;  // the last epoch it was granted or restored in
};

struct ResourceCheck {
  std::int64_t last_token = 0;
  std::int64_t last_token_seq = 0;
  std::optional<OpenLease> open;
  std::int64_t hold_until_ms = 0;  // regrant_at of the lease that ended last (0: none)
  std::int64_t hold_seq = 0;
};

std::string Key(std::string_view tenant, std::string_view resource) {
  std::string key;
  key.reserve(tenant.size() + resource.size() + 1);
  key.append(tenant);
  key += '/';
  key.append(resource);
  return key;
}

// "not_holder: token 7 from node ..." / "expired: the lease with token 7 ...": the token the
// coordinator's deny reason names, if it names one.
std::optional<std::int64_t> TokenNamedInDeny(std::string_view reason) {
  for (std::string_view prefix : {std::string_view("not_holder: token "), std::string_view("expired: the lease with token ")}) {
    if (reason.starts_with(prefix)) {
      const std::string_view rest = reason.substr(prefix.size());
      std::int64_t value = 0;
      const auto [end, ec] = std::from_chars(rest.data(), rest.data() + rest.size(), value);
      if (ec == std::errc() && end != rest.data()) return value;
    }
  }
  return std::nullopt;
}

class Verifier {
 public:
  Verifier(VerifyReport& report, std::size_t max_reported) : report_(report), max_reported_(max_reported) {}

  void Add(std::int64_t seq, std::optional<std::int64_t> related, std::string_view rule, std::string message) {
    ++report_.violation_count;
    if (report_.violations.size() < max_reported_) {
      report_.violations.push_back(Violation{seq, related, std::string(rule), std::move(message)});
    }
  }

  void Feed(const EventRow& r) {
    ++report_.events;
    if (!r.kind) {
      Add(r.seq, std::nullopt, "row", fmt::format("unknown event kind '{}'", OneLine(r.kind_text)));
      return;
    }
    if (!RowIsPossible(r)) return;
    CheckEpoch(r);
    if (*r.kind == EventKind::kEpochStart) return;
    if (*r.kind == EventKind::kDeny) {
      const auto named = TokenNamedInDeny(r.reason);
      if (named && r.token != named) {
        Add(r.seq, std::nullopt, "token",
            fmt::format("deny names token {} in its reason but carries token {}", *named,
                        r.token ? fmt::format("{}", *r.token) : std::string("NULL")));
      }
      return;
    }
    if (*r.kind == EventKind::kStaleEpoch || *r.kind == EventKind::kQueued) return;
    if (*r.kind == EventKind::kRestore && !r.token) return;  // a restored waiter

    key_.assign(r.tenant);
    key_ += '/';
    key_.append(r.resource);
    auto it = resources_.find(key_);
    if (it == resources_.end()) {
      if (resources_.size() >= kMaxResourcesTracked) {
        if (!too_many_reported_) {
          Add(r.seq, std::nullopt, "row",
              fmt::format("more than {} resources: events of further resources are not checked", kMaxResourcesTracked));
          too_many_reported_ = true;
        }
        return;
      }
      it = resources_.emplace(key_, ResourceCheck{}).first;
    }
    ResourceCheck& s = it->second;
    const std::string& name = it->first;
    switch (*r.kind) {
      case EventKind::kGrant: OnGrant(r, name, s); break;
      case EventKind::kRestore: OnRestore(r, name, s); break;
      case EventKind::kRenew: OnRenew(r, name, s); break;
      case EventKind::kRelease:
      case EventKind::kExpiry: OnEnd(r, name, s); break;
      default: break;
    }
  }

  // After the last row: leases the last active epoch did not carry, and the stored table.
  // `complete`: the scan reached the last row (otherwise only counts are taken).
  void FinishEvents(bool complete) {
    for (const auto& [name, s] : resources_) {
      if (s.open) {
        ++report_.open_leases;
        if (complete) CheckCarried(s.open->grant_seq, name, *s.open, max_epoch_ + 1);
      }
    }
    report_.resources = resources_.size();
  }

  void CheckLeaseTable(LogReader& reader) {
    auto rows = reader.Prepare("SELECT tenant, resource, last_token, hold_until_dtn_ms FROM resources");
    if (!rows) {
      Add(0, std::nullopt, "lease-table", fmt::format("cannot read the resources table: {}", rows.error().message));
      return;
    }
    std::unordered_map<std::string, bool> seen;
    for (;;) {
      auto more = rows->Step();
      if (!more) {
        Add(0, std::nullopt, "read", fmt::format("reading the resources table failed: {}", OneLine(more.error().message)));
        return;
      }
      if (!*more) break;
      const std::string name = Key(rows->TextView(0), rows->TextView(1));
      const std::int64_t last_token = rows->Int(2);
      const std::int64_t hold_until = rows->Int(3);
      const auto it = resources_.find(name);
      if (seen.size() < 10'000'000) seen.emplace(name, true);
      if (it == resources_.end()) {
        if (last_token != 0) {
          Add(0, std::nullopt, "lease-table",
              fmt::format("the resources table says {} had token {}, but no event grants it", name, last_token));
        }
        continue;
      }
      const ResourceCheck& s = it->second;
      if (s.last_token != last_token) {
        Add(0, s.last_token_seq, "lease-table",
            fmt::format("the resources table says the last token of {} is {}, the events say {} (seq {})", name,
                        last_token, s.last_token, s.last_token_seq));
      }
      if (s.hold_until_ms != hold_until) {
        Add(0, s.hold_seq ? std::optional<std::int64_t>(s.hold_seq) : std::nullopt, "lease-table",
            fmt::format("the resources table says {} is held off until {}, the events say {}", name,
                        FormatUtc(hold_until), FormatUtc(s.hold_until_ms)));
      }
    }
    for (const auto& [name, s] : resources_) {
      if (s.last_token > 0 && !seen.contains(name)) {
        Add(0, s.last_token_seq, "lease-table",
            fmt::format("{} was granted token {} (seq {}) but has no row in the resources table", name, s.last_token,
                        s.last_token_seq));
      }
    }

    auto leases = reader.Prepare("SELECT tenant, resource, rover, token, expires_dtn_ms FROM leases");
    if (!leases) {
      Add(0, std::nullopt, "lease-table", fmt::format("cannot read the leases table: {}", leases.error().message));
      return;
    }
    std::size_t lease_rows = 0;
    std::unordered_map<std::string, bool> leased;
    for (;;) {
      auto more = leases->Step();
      if (!more) {
        Add(0, std::nullopt, "read", fmt::format("reading the leases table failed: {}", OneLine(more.error().message)));
        return;
      }
      if (!*more) break;
      ++lease_rows;
      const std::string name = Key(leases->TextView(0), leases->TextView(1));
      const std::int64_t rover = leases->Int(2), token = leases->Int(3), expires = leases->Int(4);
      const auto it = resources_.find(name);
      if (leased.size() < 10'000'000) leased.emplace(name, true);
      if (it == resources_.end() || !it->second.open) {
        Add(0, std::nullopt, "lease-table",
            fmt::format("the leases table says rover {} holds {} with token {}, but the events end or never grant "
                        "that lease",
                        rover, name, token));
        continue;
      }
      const OpenLease& open = *it->second.open;
      if (open.token != token || open.rover != rover || open.expires_ms != expires) {
        Add(0, open.grant_seq, "lease-table",
            fmt::format("the leases table says {} is held by rover {} with token {} until {}, the events say rover "
                        "{} token {} until {} (grant seq {})",
                        name, rover, token, FormatUtc(expires), open.rover, open.token, FormatUtc(open.expires_ms),
                        open.grant_seq));
      }
    }
    for (const auto& [name, s] : resources_) {
      if (s.open && !leased.contains(name)) {
        Add(0, s.open->grant_seq, "lease-table",
            fmt::format("{} token {} (grant seq {}) is open in the events but not in the leases table", name,
                        s.open->token, s.open->grant_seq));
      }
    }
    (void)lease_rows;
  }

 private:
  bool RowIsPossible(const EventRow& r) {
    const EventKind kind = *r.kind;
    const std::string_view kind_name = coordinator::EventKindName(kind);
    std::string problem;
    const auto need = [&](const std::optional<std::int64_t>& v, std::string_view column) {
      if (!v && problem.empty()) problem = fmt::format("{} without {}", kind_name, column);
    };
    if (r.epoch < 1) problem = fmt::format("epoch {} (epochs start at 1)", r.epoch);
    for (const auto& [v, column] : {std::pair{r.rover, "rover"}, std::pair{r.request_id, "request_id"},
                                    std::pair{r.token, "token"}, std::pair{r.term_ms, "term_ms"}}) {
      if (v && *v < 0 && problem.empty()) problem = fmt::format("negative {} {}", column, *v);
    }
    if (r.reason.size() > kMaxStoredTextBytes || r.policy.size() > kMaxStoredTextBytes) {
      if (problem.empty()) problem = "an over-long reason or policy text";
    }
    const bool needs_resource = kind != EventKind::kEpochStart && kind != EventKind::kDeny &&
                                kind != EventKind::kStaleEpoch;
    if (problem.empty() && needs_resource) {
      if (!r.has_resource || r.tenant.empty() || r.resource.empty()) {
        problem = fmt::format("{} without a resource", kind_name);
      } else if (r.tenant.size() > coordinator::kMaxNameBytes || r.resource.size() > coordinator::kMaxNameBytes) {
        problem = fmt::format("{} with an over-long resource name", kind_name);
      }
    }
    if (problem.empty() && kind == EventKind::kEpochStart && r.has_resource) problem = "epoch_start with a resource";
    switch (kind) {
      case EventKind::kGrant:
        need(r.rover, "rover");
        need(r.request_id, "request_id");
        need(r.token, "token");
        need(r.lease_expires_ms, "lease_expires");
        need(r.term_ms, "term");
        if (problem.empty() && *r.token < 1) problem = fmt::format("grant of token {}", *r.token);
        if (problem.empty() && *r.term_ms <= 0) problem = fmt::format("grant of a {} ms term", *r.term_ms);
        if (problem.empty() && *r.lease_expires_ms < r.at_ms) {
          problem = fmt::format("grant at {} of a lease expiring before it, at {}", FormatUtc(r.at_ms),
                                FormatUtc(*r.lease_expires_ms));
        }
        break;
      case EventKind::kRenew:
        need(r.token, "token");
        need(r.lease_expires_ms, "lease_expires");
        need(r.term_ms, "term");
        break;
      case EventKind::kRelease:
      case EventKind::kExpiry:
        need(r.token, "token");
        need(r.regrant_at_ms, "regrant_at");
        if (problem.empty() && r.lease_expires_ms && kind == EventKind::kExpiry &&
            *r.regrant_at_ms < *r.lease_expires_ms) {
          problem = fmt::format("expiry whose regrant time {} precedes the lease's end {}", FormatUtc(*r.regrant_at_ms),
                                FormatUtc(*r.lease_expires_ms));
        }
        break;
      case EventKind::kQueued:
        need(r.rover, "rover");
        need(r.request_id, "request_id");
        need(r.term_ms, "term");
        need(r.deadline_ms, "deadline");
        break;
      case EventKind::kRestore:
        need(r.rover, "rover");
        need(r.request_id, "request_id");
        if (problem.empty() && r.token) need(r.lease_expires_ms, "lease_expires");
        break;
      default: break;
    }
    if (problem.empty()) return true;
    Add(r.seq, std::nullopt, "row", fmt::format("impossible row: {}", problem));
    return false;
  }

  void CheckEpoch(const EventRow& r) {
    if (*r.kind == EventKind::kEpochStart) {
      ++report_.epochs;
      if (r.epoch <= max_epoch_) {
        Add(r.seq, max_epoch_seq_, "epoch",
            fmt::format("epoch_start of epoch {} does not rise above epoch {} (seq {})", r.epoch, max_epoch_,
                        max_epoch_seq_));
        return;
      }
      max_epoch_ = r.epoch;
      max_epoch_seq_ = r.seq;
      return;
    }
    if (r.epoch < max_epoch_) {
      Add(r.seq, max_epoch_seq_, "epoch",
          fmt::format("{} of epoch {} after epoch {} started (seq {}): epochs go backwards", r.kind_text, r.epoch,
                      max_epoch_, max_epoch_seq_));
      return;
    }
    if (r.epoch > max_epoch_) {
      Add(r.seq, std::nullopt, "epoch",
          fmt::format("{} of epoch {}, which has no epoch_start before it (latest started: {})", r.kind_text, r.epoch,
                      max_epoch_));
      max_epoch_ = r.epoch;
      max_epoch_seq_ = r.seq;
    }
    if (active_epochs_.empty() || active_epochs_.back() != r.epoch) {
      if (active_epochs_.size() < kMaxActiveEpochsTracked) active_epochs_.push_back(r.epoch);
    }
  }

  // A lease live in `live_epoch` and touched again in `now_epoch`: every epoch in between that
  // logged anything must have restored it first.
  void CheckCarried(std::int64_t seq, const std::string& name, const OpenLease& open, std::int64_t now_epoch) {
    const auto it = std::upper_bound(active_epochs_.begin(), active_epochs_.end(), open.live_epoch);
    if (it != active_epochs_.end() && *it < now_epoch) {
      Add(seq, open.grant_seq, "restore",
          fmt::format("lease of {} token {} (granted seq {}, epoch {}) was neither ended nor restored in epoch {}: "
                      "the coordinator lost it",
                      name, open.token, open.grant_seq, open.live_epoch, *it));
    }
  }

  void OnGrant(const EventRow& r, const std::string& name, ResourceCheck& s) {
    ++report_.grants;
    const std::int64_t token = *r.token;
    if (token <= s.last_token) {
      Add(r.seq, s.last_token_seq, "token",
          fmt::format("fencing token {} of {} does not rise above token {} (seq {})", token, name, s.last_token,
                      s.last_token_seq));
    }
    if (s.open) {
      Add(r.seq, s.open->grant_seq, "overlap",
          fmt::format("grant of {} token {} to rover {} while token {} of rover {} (seq {}) is still held, neither "
                      "released nor expired",
                      name, token, *r.rover, s.open->token, s.open->rover, s.open->grant_seq));
    } else if (r.at_ms < s.hold_until_ms) {
      Add(r.seq, s.hold_seq, "overlap",
          fmt::format("grant of {} token {} at {} before the previous lease's regrant time {} (seq {}): it may still "
                      "be valid in the coordinator's view",
                      name, token, FormatUtc(r.at_ms), FormatUtc(s.hold_until_ms), s.hold_seq));
    }
    if (token > s.last_token) {
      s.last_token = token;
      s.last_token_seq = r.seq;
    }
    s.open = OpenLease{token, *r.rover, *r.request_id, r.seq, *r.lease_expires_ms, r.epoch};
  }

  void OnRestore(const EventRow& r, const std::string& name, ResourceCheck& s) {
    if (!s.open || s.open->token != *r.token || s.open->rover != *r.rover) {
      Add(r.seq, s.open ? std::optional<std::int64_t>(s.open->grant_seq) : std::nullopt, "restore",
          s.open ? fmt::format("restore of {} token {} (rover {}) but the open lease is token {} of rover {} (seq {})",
                               name, *r.token, *r.rover, s.open->token, s.open->rover, s.open->grant_seq)
                 : fmt::format("restore of {} token {} (rover {}) but no lease of it is open", name, *r.token,
                               *r.rover));
      return;
    }
    CheckCarried(r.seq, name, *s.open, r.epoch);
    s.open->live_epoch = r.epoch;
    s.open->expires_ms = *r.lease_expires_ms;
  }

  bool RefersToOpen(const EventRow& r, const std::string& name, ResourceCheck& s) {
    if (s.open && s.open->token == *r.token && (!r.rover || *r.rover == s.open->rover)) {
      if (s.open->live_epoch < r.epoch) {
        CheckCarried(r.seq, name, *s.open, r.epoch + 1);
        s.open->live_epoch = r.epoch;  // reported once
      }
      return true;
    }
    std::string current = s.open ? fmt::format("token {} of rover {} (seq {})", s.open->token, s.open->rover,
                                               s.open->grant_seq)
                                  : std::string("none");
    Add(r.seq, s.open ? std::optional<std::int64_t>(s.open->grant_seq) : std::nullopt, "unknown-token",
        fmt::format("{} of {} token {}{} does not refer to the current lease (current: {})", r.kind_text, name,
                    *r.token, r.rover ? fmt::format(" by rover {}", *r.rover) : std::string(), current));
    return false;
  }

  void OnRenew(const EventRow& r, const std::string& name, ResourceCheck& s) {
    if (!RefersToOpen(r, name, s)) return;
    OpenLease& open = *s.open;
    if (r.at_ms >= open.expires_ms) {
      Add(r.seq, open.grant_seq,
          "lease-end",
          fmt::format("renewal of {} token {} at {}, at or after the lease expired in the coordinator's view ({})",
                      name, open.token, FormatUtc(r.at_ms), FormatUtc(open.expires_ms)));
    }
    if (*r.lease_expires_ms < open.expires_ms) {
      Add(r.seq, open.grant_seq, "lease-end",
          fmt::format("renewal of {} token {} shortens the lease from {} to {}", name, open.token,
                      FormatUtc(open.expires_ms), FormatUtc(*r.lease_expires_ms)));
    }
    open.expires_ms = std::max(open.expires_ms, *r.lease_expires_ms);
  }

  void OnEnd(const EventRow& r, const std::string& name, ResourceCheck& s) {
    if (!RefersToOpen(r, name, s)) return;
    if (*r.kind == EventKind::kExpiry && r.at_ms < s.open->expires_ms) {
      Add(r.seq, s.open->grant_seq, "lease-end",
          fmt::format("expiry of {} token {} at {}, before the lease's end {}", name, s.open->token, FormatUtc(r.at_ms),
                      FormatUtc(s.open->expires_ms)));
    }
    s.open.reset();
    s.hold_until_ms = *r.regrant_at_ms;
    s.hold_seq = r.seq;
  }

  VerifyReport& report_;
  std::size_t max_reported_;
  std::unordered_map<std::string, ResourceCheck> resources_;
  std::string key_;
  std::int64_t max_epoch_ = 0;
  std::int64_t max_epoch_seq_ = 0;
  std::vector<std::int64_t> active_epochs_;  // epochs that logged more than their start, rising
  bool too_many_reported_ = false;
};

// The file's schema objects (tables, indexes, triggers) against those this build creates for
// the same version: a missing trigger, an altered table or a foreign object is damage.
void CheckSchemaObjects(LogReader& reader, Verifier& verifier) {
  const storage::SchemaSpec& spec = coordinator::EpochLogSchema();
  const std::size_t version = std::min<std::size_t>(static_cast<std::size_t>(reader.schema_version()),
                                                    spec.migrations.size());
  const storage::SchemaSpec known{spec.name, spec.application_id, spec.migrations.first(version)};
  storage::OpenOptions memory_options;
  memory_options.wal = false;
  auto memory = storage::Database::Open(":memory:", memory_options);
  if (!memory) return;  // cannot build the reference: skip the check rather than guess
  if (!storage::Migrate(*memory, known) || !storage::EpochStore::Open(*memory)) return;

  using Objects = std::map<std::string, std::pair<std::string, std::string>>;  // name -> (type, sql)
  constexpr std::string_view kSql =
      "SELECT type, name, sql FROM sqlite_schema WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'";
  const auto read = [&](const storage::Database& db, Objects& out) -> bool {
    auto st = db.Prepare(kSql);
    if (!st) return false;
    for (;;) {
      auto more = st->Step();
      if (!more || !*more) return more.has_value();
      if (out.size() >= 10'000) return true;  // bounded: a schema this big is foreign anyway
      out.emplace(std::string(st->TextView(1)), std::pair{std::string(st->TextView(0)), std::string(st->TextView(2))});
    }
  };
  Objects expected, found;
  if (!read(*memory, expected)) return;
  if (!read(reader.database(), found)) {
    verifier.Add(0, std::nullopt, "schema", "cannot read the file's schema (sqlite_schema)");
    return;
  }
  for (const auto& [name, object] : expected) {
    const auto it = found.find(name);
    if (it == found.end()) {
      verifier.Add(0, std::nullopt, "schema",
                   fmt::format("the {} {} of epoch log schema version {} is missing", object.first, name, version));
    } else if (it->second != object) {
      verifier.Add(0, std::nullopt, "schema",
                   fmt::format("the {} {} differs from epoch log schema version {}: {}", it->second.first, name,
                               version, OneLine(it->second.second)));
    }
  }
  for (const auto& [name, object] : found) {
    if (!expected.contains(name)) {
      verifier.Add(0, std::nullopt, "schema",
                   fmt::format("a {} {} that epoch log schema version {} does not have", object.first, name, version));
    }
  }
}

}  // namespace

std::expected<VerifyReport, Error> Verify(LogReader& reader, const VerifyOptions& options) {
  VerifyReport report;
  Verifier verifier(report, options.max_reported);

  // The page check reads every page of every table and index; it runs on its own read-only
  // connection in a second thread while this one scans the events, so the two overlap. (Its
  // snapshot may differ from the scan's by what the coordinator committed in between; the page
  // structure is checked either way.) If no thread can be started it runs here, first.
  std::future<std::optional<std::string>> integrity;
  if (options.integrity != VerifyOptions::Integrity::kNone) {
    const bool quick = options.integrity == VerifyOptions::Integrity::kQuick;
    const auto check = [path = reader.path(), quick]() -> std::optional<std::string> {
      auto own = LogReader::Open(path);
      if (!own) return own.error().message;
      auto ok = own->database().CheckIntegrity(quick);
      if (!ok) return OneLine(ok.error().message);
      return std::nullopt;
    };
    try {
      integrity = std::async(std::launch::async, check);
    } catch (const std::system_error&) {
      std::promise<std::optional<std::string>> done;
      done.set_value(check());
      integrity = done.get_future();
    }
  }
  CheckSchemaObjects(reader, verifier);

  EventFilter all;
  all.texts = false;
  auto cursor = reader.Events(all);
  if (!cursor) return std::unexpected(cursor.error());
  std::int64_t last_seq = 0;
  bool complete = true;
  for (;;) {
    auto row = cursor->Next();
    if (!row) {
      verifier.Add(last_seq, std::nullopt, "read",
                   fmt::format("reading the events after seq {} failed, the rest is unchecked: {}", last_seq,
                               row.error().message));
      complete = false;
      break;
    }
    if (*row == nullptr) break;
    last_seq = (*row)->seq;
    verifier.Feed(**row);
  }
  verifier.FinishEvents(complete);
  if (complete) verifier.CheckLeaseTable(reader);
  if (integrity.valid()) {
    if (auto problem = integrity.get()) verifier.Add(0, std::nullopt, "integrity", *problem);
  }
  return report;
}

int WriteVerifyReport(const VerifyReport& report, Sink& sink, const OutputOptions& output) {
  const std::string summary =
      report.ok() ? fmt::format("ok: {} events, {} epochs, {} resources, {} grants, {} leases open: every invariant "
                                "holds",
                                report.events, report.epochs, report.resources, report.grants, report.open_leases)
                  : fmt::format("FAILED: {} violation(s) in {} events ({} shown)", report.violation_count,
                                report.events, report.violations.size());
  if (output.format == Format::kTable) {
    std::string text;
    for (const Violation& v : report.violations) {
      text += v.seq > 0 ? fmt::format("seq {}: [{}] {}\n", v.seq, v.rule, v.message)
                        : fmt::format("[{}] {}\n", v.rule, v.message);
    }
    text += summary;
    text += '\n';
    sink.Write(text);
  } else {
    RowWriter rows(sink, output,
                   {{"seq", Column::Kind::kInt, 8},
                    {"related_seq", Column::Kind::kInt, 8},
                    {"rule", Column::Kind::kText, 12},
                    {"message", Column::Kind::kText, 0}});
    for (const Violation& v : report.violations) {
      const Field fields[] = {v.seq > 0 ? Field::Int(v.seq) : Field::Null(), Field::Int(v.related_seq),
                              Field::Text(v.rule), Field::Text(v.message)};
      if (!rows.Row(fields)) break;
    }
    if (output.format == Format::kJson) {
      const Field fields[] = {Field::Null(), Field::Null(), Field::Text(report.ok() ? "ok" : "summary"),
                              Field::Text(summary)};
      rows.Row(fields);
    }
    rows.Finish();
  }
  return report.ok() ? kExitOk : kExitViolations;
}

}  // namespace ics::epochlog
