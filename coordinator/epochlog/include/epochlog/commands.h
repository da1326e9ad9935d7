// The verbs of ics-epochlog, as library calls: each reads a LogReader (one read snapshot) and
// writes rows to a Sink in the chosen format. The executable only parses options and calls these.
//
//   epochs    every epoch: start (UTC and mission elapsed time since the first epoch), cause,
//             leases/waiters restored, grants, events
//   leases    lease events (all but epoch starts), oldest first, filtered
//   history   the chain of holders of one resource: tokens, lease windows, gaps, waits
//   explain   why a request was granted, queued, denied or refused, quoting the recorded policy
//   verify    the log's invariants and damage (see Verify)
//   timeline  the SVG picture (timeline_svg.h) of the log
//
// Listings stream in seq order and hold per-resource state only (history: one resource; verify:
// a few words per resource), so ten million events cost constant memory.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coordinator/protocol.h"
#include "epochlog/log_reader.h"
#include "epochlog/output.h"
#include "epochlog/timeline_svg.h"

namespace ics::epochlog {

// "2026-11-29T04:54:55Z" (any form clock::DtnTime::ParseIso8601 reads) or a bare integer: DTN
// milliseconds. kUsage error naming the text otherwise.
std::expected<std::int64_t, Error> ParseTimeArg(std::string_view text);
// "tenant/resource" (coordinator::ParseResourceName). kUsage error otherwise.
std::expected<coordinator::ResourceName, Error> ParseResourceArg(std::string_view text);

// --- epochs ---------------------------------------------------------------------------------

// The cause of an epoch, from its recorded reason and what it restored:
//   "restore"              the reason says restore (a data directory restored from a backup)
//   "restart after crash"  leases or waiters were restored (the previous run ended holding some),
//                          or the reason says crash
//   "restart"              a later epoch that restored nothing (a clean stop, then a start)
//   "start"                the first epoch of the log, restoring nothing
std::string_view EpochCause(std::string_view reason, bool first, std::uint64_t restored_leases,
                            std::uint64_t restored_waiters);

std::expected<void, Error> ListEpochs(LogReader& reader, Sink& sink, const OutputOptions& output);

// --- leases ---------------------------------------------------------------------------------

struct LeaseQuery {
  std::optional<coordinator::ResourceName> resource;
  std::optional<std::int64_t> rover;
  std::optional<std::int64_t> since_ms;
  std::optional<std::int64_t> until_ms;
  std::optional<std::int64_t> epoch;
};
// Columns: seq, at, epoch, kind, resource, rover, request_id, token, expires, term_ms, deadline,
// regrant_at, reason, policy (policy in JSON and CSV only).
std::expected<void, Error> ListLeases(LogReader& reader, Sink& sink, const OutputOptions& output,
                                      const LeaseQuery& query);

// --- history --------------------------------------------------------------------------------

// One row per completed item, in log order:
//   "lease"  token, rover, request_id, epoch, from (grant), to (release/expiry; null if open),
//            ended (released / expired / open), renewals, held_ms, gap_ms (no holder before it,
//            since the previous lease ended), waited_ms (queued -> grant; null if never queued)
//   "wait"   a queued request that never got the lease: rover, request_id, from (queued), to
//            (deny), ended (the deny reason, or "waiting" at the end of the log), waited_ms
// kNotFound when the resource has no event.
std::expected<void, Error> ListHistory(LogReader& reader, Sink& sink, const OutputOptions& output,
                                       const coordinator::ResourceName& resource);

// --- explain --------------------------------------------------------------------------------

// A request by id (every rover that used that id, or only `rover`), or the request of `rover`
// that was last acted on at or before `at_ms`.
struct ExplainQuery {
  std::optional<std::int64_t> request_id;
  std::optional<std::int64_t> rover;
  std::optional<std::int64_t> at_ms;
};
// The outcome of one request, derived from its events:
//   "granted"  (possibly after being queued), "queued" (still waiting at the end of the log),
//   "denied"   (term too short, deadline passed, not holder, expired, overloaded),
//   "refused"  (bad request, or a message of a stale epoch: not acted upon),
//   "renewed", "released", "expired" for renew/release requests and lease ends.
struct Explanation {
  std::int64_t rover = 0;
  std::int64_t request_id = 0;
  std::string resource;
  std::string outcome;
  std::string summary;  // one sentence, e.g. "granted token 4 after waiting 2m 10s in the queue"
  std::string reason;   // the recorded reason of the deciding event
  std::string policy;   // the recorded timeout-policy explanation (of the deciding event or its grant)
  std::vector<std::int64_t> seqs;  // the request's events
};
// At most kMaxExplained requests are explained (an id used by many rovers); kNotFound when none.
inline constexpr std::size_t kMaxExplained = 1000;
std::expected<std::vector<Explanation>, Error> ExplainRequests(LogReader& reader, const ExplainQuery& query);
// Table: a readable paragraph per request; JSON: one object per request; CSV: one row each.
std::expected<void, Error> WriteExplanations(const std::vector<Explanation>& explanations, Sink& sink,
                                             const OutputOptions& output);

// --- verify ---------------------------------------------------------------------------------

// One broken invariant or piece of damage, at row `seq` (0 when it is not one row's: the file,
// the schema, the lease table). `related_seq`: the earlier row it conflicts with, if any.
struct Violation {
  std::int64_t seq = 0;
  std::optional<std::int64_t> related_seq;
  std::string rule;     // "integrity", "schema", "row", "epoch", "token", "overlap", "lease-end",
                        // "unknown-token", "restore", "lease-table", "read"
  std::string message;  // one line
};

struct VerifyOptions {
  enum class Integrity { kNone, kQuick, kFull };
  Integrity integrity = Integrity::kQuick;  // PRAGMA quick_check, or integrity_check
  std::size_t max_reported = 20;            // violations kept in the report (all are counted)
};

struct VerifyReport {
  std::uint64_t events = 0;
  std::uint64_t epochs = 0;  // epoch_start events
  std::uint64_t resources = 0;
  std::uint64_t grants = 0;
  std::uint64_t open_leases = 0;  // at the end of the log
  std::uint64_t violation_count = 0;
  std::vector<Violation> violations;  // the first max_reported, in seq order of detection
  bool ok() const { return violation_count == 0; }
};

// Checks, in one pass in seq order:
//  - damage: integrity/quick check, a schema that differs from the one this build writes (missing
//    or altered tables, indexes, triggers), rows with impossible values (unknown kind, epoch < 1,
//    negative ids or tokens, a kind's required fields NULL, a lease that expires before it was
//    granted, over-long texts), read errors mid-scan (reported, never a crash);
//  - epochs strictly rise: each epoch_start is above every epoch before it; no event carries an
//    epoch below the latest started one;
//  - fencing tokens strictly rise per resource, across epochs;
//  - no grant overlaps a lease still valid in the coordinator's view: the resource's previous
//    lease must have ended (release or expiry) and the grant must not precede its regrant_at;
//  - renew, release, expiry and restore refer to the resource's current lease (token and holder);
//    no renewal at or after the lease expired; no expiry before its time; a deny that names a
//    token in its reason carries that token;
//  - every grant ends in release or expiry, is still open, or is restored by the next epoch that
//    logged anything (a lease the next run neither restored nor ended was lost);
//  - the stored lease table (resources, leases) agrees with the events.
// Only errors that stop the scan before it starts (none so far) are returned as Error.
std::expected<VerifyReport, Error> Verify(LogReader& reader, const VerifyOptions& options);
// Table: "seq N: <message>" lines then a summary line; JSON: one object per violation then a
// summary object; CSV: seq,related_seq,rule,message. Returns kExitOk or kExitViolations.
int WriteVerifyReport(const VerifyReport& report, Sink& sink, const OutputOptions& output);

// --- timeline -------------------------------------------------------------------------------

struct TimelineQuery {
  std::optional<coordinator::ResourceName> resource;
  std::optional<std::int64_t> since_ms;
  std::optional<std::int64_t> until_ms;
};
// The drawing model of the log (lanes sorted by resource name), bounded by kMaxTimelineLanes and
// kMaxTimelineItems (the footnote says what was left out).
std::expected<TimelineModel, Error> BuildTimeline(LogReader& reader, const TimelineQuery& query);

}  // namespace ics::epochlog

namespace ics::epochlog {

// A parsed command line (the executable fills it from argv; tests build it directly). Arguments
// that need checking (times, names) stay text here: RunCommand checks them and reports a usage
// error (exit 2) naming the argument.
struct CommandLine {
  std::string verb;  // epochs | leases | history | explain | verify | timeline
  std::string db;    // epoch log file or coordinator data directory
  OutputOptions output;
  std::optional<std::string> resource;  // leases --resource, history's T/R, timeline --resource
  std::optional<std::int64_t> rover;
  std::optional<std::string> since;
  std::optional<std::string> until;
  std::optional<std::int64_t> epoch;
  std::optional<std::int64_t> request_id;  // explain REQUEST-ID
  std::optional<std::string> at;           // explain --at
  std::string out;                         // timeline --out FILE.svg
  VerifyOptions verify;
};

// Runs one verb: output to `out`, one-line errors ("ics-epochlog: ...") to `err`. Returns the exit
// status: kExitOk, kExitViolations (verify found problems), kExitError (usage, missing file, not
// an epoch log, newer schema, damaged file, request not found, cannot write --out).
int RunCommand(const CommandLine& command, Sink& out, Sink& err);

}  // namespace ics::epochlog
