// ics-epochlog: parses the command line and calls ics::epochlog (RunCommand, RunBench).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <string>

#include "epochlog/bench.h"
#include "epochlog/commands.h"

namespace {

struct Flags {
  bool json = false;
  bool csv = false;
  bool dtn_time = false;
  bool no_pager = false;
};

void AddOutputFlags(CLI::App* sub, Flags& flags) {
  auto* json = sub->add_flag("--json", flags.json, "one JSON object per line");
  sub->add_flag("--csv", flags.csv, "CSV with a header row (RFC 4180 quoting)")->excludes(json);
  sub->add_flag("--dtn-time", flags.dtn_time, "times as DTN milliseconds instead of UTC ISO-8601");
  sub->add_flag("--no-pager", flags.no_pager, "never page, even on a terminal");
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ics::epochlog;
  CLI::App app{"ics-epochlog: inspect a coordinator's epoch log (read-only; safe on a live coordinator)"};
  app.require_subcommand(1);
  CommandLine c;
  Flags flags;
  std::string resource, since, until, at;
  std::int64_t rover = 0, epoch = 0, request_id = 0;
  bool full_check = false, no_check = false;
  std::size_t max_reported = 20;
  BenchOptions bench;

  const std::string db_help = "the epoch log, or a coordinator data directory holding epochlog.db";
  auto* epochs = app.add_subcommand("epochs", "every epoch: start (UTC, mission elapsed time), cause, restored, granted");
  auto* leases = app.add_subcommand("leases", "grants, renewals, releases, expiries and refusals, oldest first");
  auto* history = app.add_subcommand("history", "the chain of holders of one resource: tokens, windows, gaps, waits");
  auto* explain = app.add_subcommand("explain", "why a request was granted, queued, denied or refused");
  auto* verify = app.add_subcommand("verify", "check the log's invariants; exit 1 naming the first violating rows");
  auto* timeline = app.add_subcommand("timeline", "draw the log as an SVG timeline");
  auto* bench_cmd = app.add_subcommand("bench", "generate a big log and time leases/verify over it");
  bench_cmd->group("");  // hidden: a developer's tool
  for (CLI::App* sub : {epochs, leases, history, explain, verify, timeline}) {
    sub->add_option("DB", c.db, db_help)->required();
    AddOutputFlags(sub, flags);
  }
  history->add_option("RESOURCE", resource, "tenant/resource")->required();
  leases->add_option("--resource", resource, "only this tenant/resource");
  timeline->add_option("--resource", resource, "only this tenant/resource");
  leases->add_option("--rover", rover, "only events of this rover (node number)");
  for (CLI::App* sub : {leases, timeline}) {
    sub->add_option("--since", since, "from this time (UTC ISO-8601 or DTN ms)");
    sub->add_option("--until", until, "up to this time (UTC ISO-8601 or DTN ms)");
  }
  leases->add_option("--epoch", epoch, "only this epoch");
  auto* request_opt = explain->add_option("REQUEST-ID", request_id, "the request id");
  explain->add_option("--rover", rover, "the requesting rover");
  explain->add_option("--at", at, "the rover's request last acted on at or before this time")->needs("--rover");
  timeline->add_option("--out", c.out, "the SVG file to write")->required();
  verify->add_flag("--full", full_check, "PRAGMA integrity_check instead of quick_check");
  verify->add_flag("--no-integrity-check", no_check, "skip the SQLite page check (invariants only)");
  verify->add_option("--max", max_reported, "report at most this many violations (all are counted)");
  bench_cmd->add_option("--events", bench.generate.events, "events in the generated log");
  bench_cmd->add_option("--resources", bench.generate.resources, "resources");
  bench_cmd->add_option("--dir", bench.dir, "where the log goes")->required();
  bench_cmd->add_flag("!--no-reuse", bench.reuse, "regenerate even if the log exists");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitError;
  }
  if (bench_cmd->parsed()) return RunBench(bench, stdout);

  for (CLI::App* sub : {epochs, leases, history, explain, verify, timeline}) {
    if (sub->parsed()) c.verb = sub->get_name();
  }
  c.output.format = flags.json ? Format::kJson : flags.csv ? Format::kCsv : Format::kTable;
  c.output.time = flags.dtn_time ? TimeStyle::kDtnMs : TimeStyle::kUtc;
  if (!resource.empty()) c.resource = resource;
  if (!since.empty()) c.since = since;
  if (!until.empty()) c.until = until;
  if (!at.empty()) c.at = at;
  if ((leases->parsed() || explain->parsed()) && (leases->count("--rover") + explain->count("--rover")) > 0) {
    c.rover = rover;
  }
  if (leases->count("--epoch") > 0) c.epoch = epoch;
  if (request_opt->count() > 0) c.request_id = request_id;
  c.verify.integrity = no_check     ? VerifyOptions::Integrity::kNone
                       : full_check ? VerifyOptions::Integrity::kFull
                                    : VerifyOptions::Integrity::kQuick;
  c.verify.max_reported = max_reported;

  auto out = MakeStdoutSink(!flags.no_pager && !timeline->parsed());
  FileSink err(stderr);
  const int status = RunCommand(c, *out, err);
  out->Finish();
  return status;
}
