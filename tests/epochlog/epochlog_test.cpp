// Goal: ics-epochlog answers operators' questions correctly from logs the real coordinator writes,
// and reports damaged or forged logs (the right rows, or a clear error) without crashing or
// changing the file. Method: drive the real LeaseCore with explicit times through the real
// SqliteLeaseLog into a temp file (contention, renewals, release, expiry, a denial, a crash and
// restart with restores, a stale-epoch refusal), run each verb through RunCommand exactly as the
// executable does, parse the --json lines, and compare with hand-computed figures; then damage
// copies of the file by hand and check verify and the open checks.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "clock/timeout_policy.h"
#include "coordinator/lease_core.h"
#include "coordinator/sqlite_lease_log.h"
#include "epochlog/bench.h"
#include "epochlog/commands.h"
#include "epochlog/log_reader.h"
#include "epochlog/output.h"
#include "epochlog/timeline_svg.h"
#include "storage/database.h"
#include "storage/epoch_store.h"
#include "storage/schema.h"

namespace {

namespace fs = std::filesystem;
using namespace ics;
using namespace ics::epochlog;
using coordinator::Acquire;
using coordinator::Header;
using coordinator::LeaseCore;
using coordinator::Release;
using coordinator::Renew;
using coordinator::ResourceName;
using clock::DtnTime;
using clock::Duration;
using namespace std::chrono_literals;

const DtnTime kT0 = DtnTime::FromMillis(1'000'000'000);
const ResourceName kDrill{"mars", "drill"};
const ResourceName kPad{"mars", "pad"};

struct TempDir {
  TempDir() {
    char pattern[] = "/tmp/epochlog-test.XXXXXX";
    REQUIRE(::mkdtemp(pattern) != nullptr);
    path = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  std::string File(const std::string& name) const { return (fs::path(path) / name).string(); }
  std::string path;
};

// A max OWLT of 10 s and 1 s processing: round trip 21 s; no clock error, so the regrant margin
// is 1 ms.
clock::TimeoutPolicy Policy() {
  clock::PolicyInputs in;
  in.path.owlt = clock::OwltBound{Duration(8'000), Duration(10'000)};
  in.path.contact_wait_max = Duration(0);
  in.processing_margin = Duration(1'000);
  return clock::TimeoutPolicy(in);
}

// The real coordinator's pieces, wired as its driver wires them: persist, then send.
struct Coordinator {
  explicit Coordinator(const std::string& path) {
    auto opened = coordinator::SqliteLeaseLog::Open(path);
    REQUIRE_MESSAGE(opened.has_value(), opened.error().message);
    log = std::move(*opened);
  }
  void Start(std::string_view reason, DtnTime now) {
    auto e = log->StartEpoch(reason, now);
    REQUIRE(e.has_value());
    epoch = *e;
    auto table = log->LoadState();
    REQUIRE(table.has_value());
    coordinator::LeaseCoreConfig config;
    config.self = 1;
    config.epoch = epoch;
    core = std::make_unique<LeaseCore>(config, *table, [](clock::NodeNumber, DtnTime) { return Policy(); }, now);
    Flush();
  }
  void Crash() { core.reset(); }
  void Flush() {
    auto out = core->TakeOutput();
    REQUIRE(log->Append(out.to_persist).has_value());
    sent.insert(sent.end(), out.to_send.begin(), out.to_send.end());
  }
  Header H(clock::NodeNumber from, coordinator::RequestId id, const ResourceName& r, std::optional<coordinator::Epoch> e = {}) {
    return Header{r, e.value_or(epoch), id, from};
  }
  void Deliver(clock::NodeNumber from, coordinator::Message m, DtnTime now) {
    core->Receive(coordinator::Inbound{from, std::move(m)}, now);
    Flush();
  }
  void Tick(DtnTime now) {
    core->Tick(now);
    Flush();
  }
  std::unique_ptr<coordinator::SqliteLeaseLog> log;
  std::unique_ptr<LeaseCore> core;
  coordinator::Epoch epoch = 0;
  std::vector<coordinator::Outbound> sent;
};

// The story (times after kT0):
//  epoch 1 ("start" at 0 s)
//    0 s   rover 2 acquires drill (req 1, 60 s)        -> grant token 1, until 60 s
//    1 s   rover 3 acquires drill (req 1, 60 s)        -> queued at position 1
//    2 s   rover 4 acquires pad (req 1, 5 s)           -> deny term_too_short
//   30 s   rover 2 renews token 1 (req 2, 60 s)        -> renewed until 90 s
//   40 s   rover 2 releases token 1 (req 3)            -> release; rover 3 granted token 2 until 100 s
//   50 s   rover 4 acquires pad (req 2, 60 s)          -> grant pad token 1, until 110 s
//  100 s   tick                                         -> expiry of drill token 2 (regrant at 100.001 s)
//  101 s   rover 5 acquires drill (req 1, 60 s)        -> grant token 3, until 161 s
//  crash
//  epoch 2 ("restart" at 120 s): restores drill token 3 and pad token 1
//  121 s   tick                                         -> expiry of pad token 1 (expired at 110 s)
//  125 s   rover 5 renews token 3 with epoch 1 header   -> stale_epoch
//  130 s   rover 5 renews token 3 (req 2, 60 s)         -> renewed until 190 s
//  131 s   rover 2 acquires drill (req 10, 60 s)       -> queued
//  140 s   rover 5 releases token 3 (req 3)            -> release; rover 2 granted token 4 until 200 s
void WriteStory(const std::string& path) {
  Coordinator c(path);
  const DtnTime deadline = kT0 + 3'600s;
  c.Start("start", kT0);
  c.Deliver(2, Acquire{c.H(2, 1, kDrill, 0), 60s, deadline}, kT0);
  c.Deliver(3, Acquire{c.H(3, 1, kDrill, 0), 60s, deadline}, kT0 + 1s);
  c.Deliver(4, Acquire{c.H(4, 1, kPad, 0), 5s, deadline}, kT0 + 2s);
  c.Deliver(2, Renew{c.H(2, 2, kDrill), 1, 60s}, kT0 + 30s);
  c.Deliver(2, Release{c.H(2, 3, kDrill), 1}, kT0 + 40s);
  c.Deliver(4, Acquire{c.H(4, 2, kPad), 60s, deadline}, kT0 + 50s);
  c.Tick(kT0 + 100s);
  c.Deliver(5, Acquire{c.H(5, 1, kDrill), 60s, deadline}, kT0 + 101s);
  c.Crash();
  c.Start("restart", kT0 + 120s);
  c.Tick(kT0 + 121s);
  c.Deliver(5, Renew{c.H(5, 2, kDrill, 1), 3, 60s}, kT0 + 125s);
  c.Deliver(5, Renew{c.H(5, 2, kDrill), 3, 60s}, kT0 + 130s);
  c.Deliver(2, Acquire{c.H(2, 10, kDrill), 60s, deadline}, kT0 + 131s);
  c.Deliver(5, Release{c.H(5, 3, kDrill), 3}, kT0 + 140s);
}

struct Run {
  int status = 0;
  std::string out;
  std::string err;
  std::vector<nlohmann::json> Json() const {
    std::vector<nlohmann::json> lines;
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) lines.push_back(nlohmann::json::parse(line));
    }
    return lines;
  }
};

Run Cli(CommandLine c) {
  StringSink out, err;
  Run r;
  r.status = RunCommand(c, out, err);
  r.out = out.text();
  r.err = err.text();
  return r;
}

CommandLine Cmd(std::string verb, std::string db, Format format = Format::kJson) {
  CommandLine c;
  c.verb = std::move(verb);
  c.db = std::move(db);
  c.output.format = format;
  return c;
}

std::string Bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// A read-write connection for damaging a copy by hand (the append-only triggers dropped first,
// as a forger would).
void Damage(const std::string& path, const std::string& sql) {
  auto db = storage::Database::Open(path);
  REQUIRE_MESSAGE(db.has_value(), db.error().message);
  auto ok = db->Exec(sql);
  REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
}

std::int64_t QueryInt(const std::string& path, const std::string& sql) {
  auto db = storage::Database::Open(path);
  REQUIRE(db.has_value());
  auto v = db->QueryInt(sql);
  REQUIRE(v.has_value());
  REQUIRE(v->has_value());
  return **v;
}

struct Fixture {
  Fixture() {
    path = dir.File("epochlog.db");
    WriteStory(path);
  }
  std::string Copy(const std::string& name) const {
    const std::string to = dir.File(name);
    fs::copy_file(path, to);
    return to;
  }
  TempDir dir;
  std::string path;
};

bool Mentions(const Run& r, std::int64_t seq, std::string_view rule) {
  for (const auto& line : r.Json()) {
    if (line["seq"].is_number() && line["seq"].get<std::int64_t>() == seq && line["rule"] == rule) return true;
  }
  return false;
}

}  // namespace

TEST_CASE("epochlog: verify passes on a log the real core wrote across a crash and restart") {
  Fixture f;
  auto reader = LogReader::Open(f.path);
  REQUIRE(reader.has_value());
  auto report = Verify(*reader, VerifyOptions{});
  REQUIRE(report.has_value());
  for (const auto& v : report->violations) FAIL_CHECK("seq " << v.seq << ": " << v.message);
  CHECK(report->ok());
  CHECK(report->epochs == 2);
  CHECK(report->grants == 5);  // drill 1, 2, 3, 4 and pad 1
  CHECK(report->open_leases == 1);
  CHECK(report->resources == 2);

  const Run text = Cli(Cmd("verify", f.path, Format::kTable));
  CHECK(text.status == kExitOk);
  CHECK(text.out.starts_with("ok: "));
}

TEST_CASE("epochlog: epochs lists each epoch with its cause, restores, grants and mission elapsed time") {
  Fixture f;
  const Run r = Cli(Cmd("epochs", f.path));
  REQUIRE(r.status == kExitOk);
  const auto lines = r.Json();
  REQUIRE(lines.size() == 2);
  CHECK(lines[0]["epoch"] == 1);
  CHECK(lines[0]["cause"] == "start");
  CHECK(lines[0]["started"] == kT0.ToIso8601());
  CHECK(lines[0]["met_ms"] == 0);
  CHECK(lines[0]["granted"] == 4);
  CHECK(lines[0]["restored_leases"] == 0);
  CHECK(lines[1]["epoch"] == 2);
  CHECK(lines[1]["cause"] == "restart after crash");
  CHECK(lines[1]["met_ms"] == 120'000);
  CHECK(lines[1]["restored_leases"] == 2);
  CHECK(lines[1]["restored_waiters"] == 0);
  CHECK(lines[1]["granted"] == 1);
  CHECK(lines[1]["reason"] == "restart");

  CommandLine dtn = Cmd("epochs", f.dir.path);  // a data directory works too
  dtn.output.time = TimeStyle::kDtnMs;
  const auto dtn_lines = Cli(dtn).Json();
  REQUIRE(dtn_lines.size() == 2);
  CHECK(dtn_lines[1]["started"] == (kT0 + 120s).millis());

  CHECK(EpochCause("restore from backup", false, 3, 0) == "restore");
  CHECK(EpochCause("start", false, 0, 0) == "restart");
}

TEST_CASE("epochlog: leases lists events oldest first and filters by resource, rover, epoch and time") {
  Fixture f;
  const auto all = Cli(Cmd("leases", f.path)).Json();
  REQUIRE(all.size() >= 14);
  for (std::size_t i = 1; i < all.size(); ++i) CHECK(all[i]["seq"] > all[i - 1]["seq"]);
  for (const auto& e : all) CHECK(e["kind"] != "epoch_start");

  CommandLine pad = Cmd("leases", f.path);
  pad.resource = "mars/pad";
  std::vector<std::string> kinds;
  for (const auto& e : Cli(pad).Json()) kinds.push_back(e["kind"]);
  CHECK(kinds == std::vector<std::string>{"deny", "grant", "restore", "expiry"});

  CommandLine rover5 = Cmd("leases", f.path);
  rover5.rover = 5;
  rover5.epoch = 2;
  kinds.clear();
  for (const auto& e : Cli(rover5).Json()) kinds.push_back(e["kind"]);
  CHECK(kinds == std::vector<std::string>{"restore", "stale_epoch", "renew", "release"});

  CommandLine window = Cmd("leases", f.path);
  window.since = (kT0 + 30s).ToIso8601();
  window.until = std::to_string((kT0 + 40s).millis());
  kinds.clear();
  for (const auto& e : Cli(window).Json()) kinds.push_back(e["kind"]);
  CHECK(kinds == std::vector<std::string>{"renew", "release", "grant"});

  const Run csv = Cli(Cmd("leases", f.path, Format::kCsv));
  REQUIRE(csv.status == kExitOk);
  CHECK(csv.out.starts_with("seq,at,epoch,kind,resource,rover,request_id,token,expires,term_ms,deadline,regrant_at,"
                            "reason,policy\n"));
  // The stale-epoch reason has commas: quoted per RFC 4180.
  CHECK(csv.out.find("\"renew of epoch 1 refused, not acted upon: the current epoch is 2\"") != std::string::npos);

  CommandLine bad = Cmd("leases", f.path);
  bad.since = "yesterday";
  const Run usage = Cli(bad);
  CHECK(usage.status == kExitError);
  CHECK(usage.err.find("yesterday") != std::string::npos);
}

TEST_CASE("epochlog: history shows holders, tokens, lease windows, gaps and waits of one resource") {
  Fixture f;
  CommandLine c = Cmd("history", f.path);
  c.resource = "mars/drill";
  const auto rows = Cli(c).Json();
  REQUIRE(rows.size() == 4);
  CHECK(rows[0]["item"] == "lease");
  CHECK(rows[0]["token"] == 1);
  CHECK(rows[0]["rover"] == 2);
  CHECK(rows[0]["ended"] == "released");
  CHECK(rows[0]["held_ms"] == 40'000);
  CHECK(rows[0]["renewals"] == 1);
  CHECK(rows[0]["gap_ms"].is_null());
  CHECK(rows[1]["token"] == 2);
  CHECK(rows[1]["rover"] == 3);
  CHECK(rows[1]["waited_ms"] == 39'000);  // queued at 1 s, granted at 40 s
  CHECK(rows[1]["gap_ms"] == 0);          // granted at the release
  CHECK(rows[1]["ended"] == "expired");
  CHECK(rows[1]["to"] == (kT0 + 100s).ToIso8601());
  CHECK(rows[2]["token"] == 3);
  CHECK(rows[2]["rover"] == 5);
  CHECK(rows[2]["gap_ms"] == 1'000);  // expiry at 100 s, next grant at 101 s
  CHECK(rows[2]["ended"] == "released");
  CHECK(rows[2]["renewals"] == 1);
  CHECK(rows[3]["token"] == 4);
  CHECK(rows[3]["rover"] == 2);
  CHECK(rows[3]["waited_ms"] == 9'000);
  CHECK(rows[3]["ended"] == "open");
  CHECK(rows[3]["to"].is_null());

  CommandLine missing = Cmd("history", f.path);
  missing.resource = "mars/nothing";
  CHECK(Cli(missing).status == kExitError);
}

TEST_CASE("epochlog: explain says why requests were granted, denied or refused, quoting the policy") {
  Fixture f;
  CommandLine c = Cmd("explain", f.path);
  c.request_id = 1;
  const auto all = Cli(c).Json();
  REQUIRE(all.size() == 4);  // rovers 2, 3, 4, 5 each used request id 1
  CHECK(all[0]["rover"] == 2);
  CHECK(all[0]["outcome"] == "granted");
  CHECK(all[1]["rover"] == 3);
  CHECK(all[1]["outcome"] == "granted");
  CHECK(all[1]["summary"].get<std::string>().find("after waiting 39s in the queue") != std::string::npos);
  CHECK(all[1]["reason"] == "granted to the first waiter in the queue");
  CHECK(all[1]["policy"] == Policy().LeaseTerm(60s)->why);
  CHECK(all[2]["rover"] == 4);
  CHECK(all[2]["outcome"] == "denied");
  CHECK(all[2]["reason"].get<std::string>().starts_with("term_too_short: "));
  CHECK(all[2]["policy"] == Policy().LeaseTerm(5s).error().why);

  CommandLine stale = Cmd("explain", f.path);
  stale.request_id = 2;
  stale.rover = 5;
  const auto refused = Cli(stale).Json();
  REQUIRE(refused.size() == 1);
  CHECK(refused[0]["outcome"] == "refused");  // the stale-epoch renew decided first
  CHECK(refused[0]["summary"].get<std::string>().find("not acted upon") != std::string::npos);

  CommandLine at = Cmd("explain", f.path, Format::kTable);
  at.rover = 4;
  at.at = (kT0 + 3s).ToIso8601();
  const Run text = Cli(at);
  REQUIRE(text.status == kExitOk);
  CHECK(text.out.starts_with("request 1 of rover 4 on mars/pad: denied\n"));
  CHECK(text.out.find("policy: ") != std::string::npos);

  CommandLine none = Cmd("explain", f.path);
  none.request_id = 999;
  CHECK(Cli(none).status == kExitError);
}

TEST_CASE("epochlog: timeline draws lanes, labelled lease bars and epoch lines as SVG") {
  Fixture f;
  CommandLine c = Cmd("timeline", f.path, Format::kTable);
  c.out = f.dir.File("t.svg");
  REQUIRE(Cli(c).status == kExitOk);
  const std::string svg = Bytes(c.out);
  CHECK(svg.starts_with("<?xml"));
  CHECK(svg.find("</svg>") != std::string::npos);
  CHECK(svg.find(">mars/drill</text>") != std::string::npos);
  CHECK(svg.find(">mars/pad</text>") != std::string::npos);
  CHECK(svg.find("rover 3, token 2") != std::string::npos);
  CHECK(svg.find(">epoch 2</text>") != std::string::npos);

  TimelineModel model;
  model.title = "a <b> & \"c\"";
  model.from = kT0;
  model.to = kT0;  // widened, not divided by zero
  model.lanes.push_back(TimelineLane{"t/r", {{kT0, kT0 + 1s, "x", "bad \xff byte", 3, true}}, {}, {}});
  const std::string plain = RenderTimelineSvg(model);
  CHECK(plain.find("a &lt;b&gt; &amp; &quot;c&quot;") != std::string::npos);
  CHECK(plain.find("bad \xEF\xBF\xBD byte") != std::string::npos);
}

TEST_CASE("epochlog: verify catches the last token forged back to 1 and names its row") {
  Fixture f;
  const std::string forged = f.Copy("forged.db");
  const std::int64_t seq = QueryInt(forged, "SELECT max(rowid) FROM events WHERE token > 1");
  Damage(forged, fmt::format("UPDATE events SET token = 1 WHERE rowid = {}", seq));
  const Run r = Cli(Cmd("verify", forged));
  CHECK(r.status == kExitViolations);
  CHECK(Mentions(r, seq, "token"));  // the last such row is the grant of token 4

  // The same forgery on each kind of row that carries a token the coordinator assigned.
  for (const std::string kind : {"grant", "renew", "expiry", "restore"}) {
    CAPTURE(kind);
    const std::string copy = f.Copy(fmt::format("forged-{}.db", kind));
    const std::int64_t row =
        QueryInt(copy, fmt::format("SELECT max(rowid) FROM events WHERE token > 1 AND kind = '{}'", kind));
    Damage(copy, fmt::format("UPDATE events SET token = 1 WHERE rowid = {}", row));
    const Run v = Cli(Cmd("verify", copy));
    CHECK(v.status == kExitViolations);
    bool named = false;
    for (const auto& line : v.Json()) named = named || (line["seq"].is_number() && line["seq"] == row);
    CHECK_MESSAGE(named, v.out);
  }
}

TEST_CASE("epochlog: verify catches an epoch going backwards and a grant overlapping a valid lease") {
  Fixture f;
  const std::string back = f.Copy("back.db");
  Damage(back,
         "INSERT INTO events(at_dtn_ms, epoch, kind, tenant, resource, rover, request_id, reason) "
         "VALUES(1000141000, 1, 'deny', 'mars', 'pad', 9, 1, 'bad_request: late')");
  const std::int64_t back_seq = QueryInt(back, "SELECT max(seq) FROM events");
  const Run b = Cli(Cmd("verify", back));
  CHECK(b.status == kExitViolations);
  CHECK(Mentions(b, back_seq, "epoch"));

  const std::string start = f.Copy("start.db");
  Damage(start, "INSERT INTO events(at_dtn_ms, epoch, kind, reason) VALUES(1000150000, 2, 'epoch_start', 'restart')");
  const Run s = Cli(Cmd("verify", start));
  CHECK(s.status == kExitViolations);
  CHECK(Mentions(s, QueryInt(start, "SELECT max(seq) FROM events"), "epoch"));

  // Token 4 of rover 2 is open (until 200 s): a grant to rover 9 at 150 s overlaps it.
  const std::string overlap = f.Copy("overlap.db");
  Damage(overlap,
         "INSERT INTO events(at_dtn_ms, epoch, kind, tenant, resource, rover, request_id, token, lease_expires_dtn_ms, "
         "term_ms, reason) VALUES(1000150000, 2, 'grant', 'mars', 'drill', 9, 1, 5, 1000210000, 60000, 'forged')");
  const std::int64_t overlap_seq = QueryInt(overlap, "SELECT max(seq) FROM events");
  const Run o = Cli(Cmd("verify", overlap, Format::kTable));
  CHECK(o.status == kExitViolations);
  CHECK(o.out.find(fmt::format("seq {}: [overlap]", overlap_seq)) != std::string::npos);
  CHECK(o.out.find("still held") != std::string::npos);

  // The pad expired at 121 s with regrant at 110.001 s; the drill at 100 s with regrant at
  // 100.001 s: a grant of the drill at 100 s (before the regrant time) would overlap.
  const std::string early = f.Copy("early.db");
  Damage(early,
         "UPDATE events SET at_dtn_ms = 1000100000 WHERE kind = 'grant' AND token = 3 "
         "AND resource = 'drill'");
  const Run e = Cli(Cmd("verify", early, Format::kTable));
  CHECK(e.status == kExitViolations);
  CHECK(e.out.find("before the previous lease's regrant time") != std::string::npos);

  const std::string impossible = f.Copy("impossible.db");
  Damage(impossible,
         "INSERT INTO events(at_dtn_ms, epoch, kind, tenant, resource, rover, request_id) "
         "VALUES(1000150000, 2, 'grant', 'mars', 'drill', 9, 1)");
  const Run i = Cli(Cmd("verify", impossible));
  CHECK(i.status == kExitViolations);
  CHECK(Mentions(i, QueryInt(impossible, "SELECT max(seq) FROM events"), "row"));

  const std::string schema = f.Copy("schema.db");
  Damage(schema, "DROP TRIGGER events_no_delete");
  const Run sc = Cli(Cmd("verify", schema, Format::kTable));
  CHECK(sc.status == kExitViolations);
  CHECK(sc.out.find("events_no_delete") != std::string::npos);
}

TEST_CASE("epochlog: missing, foreign, truncated, newer and damaged files give one clear line and status 2") {
  Fixture f;
  const auto expect_error = [&](const std::string& path, std::string_view words) {
    CAPTURE(path);
    for (const std::string verb : {"epochs", "leases", "verify"}) {
      const Run r = Cli(Cmd(verb, path));
      CHECK(r.status == kExitError);
      CHECK(r.out.empty());
      CHECK(r.err.starts_with("ics-epochlog: "));
      CHECK(r.err.find('\n') == r.err.size() - 1);  // one line
      CHECK_MESSAGE(r.err.find(words) != std::string::npos, r.err);
    }
  };
  expect_error(f.dir.File("nope.db"), "no such file");
  expect_error(fs::path(f.dir.path).parent_path().string(), "no epochlog.db");

  const std::string text = f.dir.File("text.db");
  std::ofstream(text) << "this is not a database\n";
  expect_error(text, "not an epoch log");

  const std::string foreign = f.dir.File("foreign.db");
  Damage(foreign, "CREATE TABLE t(x); PRAGMA application_id = 7;");
  expect_error(foreign, "not an epoch log");

  const std::string newer = f.Copy("newer.db");
  Damage(newer, "PRAGMA user_version = 99");
  expect_error(newer, "newer");

  const std::string truncated = f.Copy("truncated.db");
  fs::resize_file(truncated, fs::file_size(truncated) / 2);
  expect_error(truncated, "truncated.db");
}

TEST_CASE("epochlog: verify reports a file damaged inside its pages rather than crashing") {
  Fixture f;
  const std::string damaged = f.Copy("damaged.db");
  const auto size = fs::file_size(damaged);
  REQUIRE(size > 8192);
  {
    std::fstream file(damaged, std::ios::in | std::ios::out | std::ios::binary);
    // Scribble over every page but the first (the schema): cell pointers and b-tree headers.
    for (std::uintmax_t page = 1; page * 4096 < size; ++page) {
      file.seekp(static_cast<std::streamoff>(page * 4096 + 3));
      file.write("\xff\xff\x7f\x00\x13\x37", 6);
    }
  }
  const Run r = Cli(Cmd("verify", damaged, Format::kTable));
  CHECK(r.status != kExitOk);
  CHECK((r.out + r.err).find("damaged.db") != std::string::npos);
  const Run l = Cli(Cmd("leases", damaged));
  CHECK(l.status != kExitOk);
}

TEST_CASE("epochlog: the tool never changes the log, and reads it while the coordinator writes") {
  Fixture f;
  const std::string before = Bytes(f.path);
  for (const std::string verb : {"epochs", "leases", "verify", "explain", "history", "timeline"}) {
    CommandLine c = Cmd(verb, f.path);
    c.request_id = 1;
    c.resource = "mars/drill";
    c.out = f.dir.File("t.svg");
    CHECK(Cli(c).status == kExitOk);
  }
  CHECK(Bytes(f.path) == before);

  // A live writer: the coordinator keeps the log open (WAL) and appends while a reader holds its
  // snapshot; the reader neither blocks it nor sees half of it.
  Coordinator live(f.path);
  auto reader = LogReader::Open(f.path);
  REQUIRE(reader.has_value());
  auto cursor = reader->Events(EventFilter{});
  REQUIRE(cursor.has_value());
  REQUIRE(cursor->Next().value() != nullptr);  // the snapshot is pinned
  live.Start("restart", kT0 + 300s);           // epoch 3: commits while the reader reads
  std::uint64_t seen = 1;
  while (cursor->Next().value() != nullptr) ++seen;
  const std::int64_t total = QueryInt(f.path, "SELECT count(*) FROM events");
  CHECK(static_cast<std::int64_t>(seen) < total);  // the new epoch's events were not in the snapshot
  auto fresh = LogReader::Open(f.path);
  REQUIRE(fresh.has_value());
  auto report = Verify(*fresh, VerifyOptions{});
  REQUIRE(report.has_value());
  CHECK(report->ok());
  CHECK(report->epochs == 3);
}

TEST_CASE("epochlog: a generated benchmark log verifies and lists") {
  TempDir dir;
  const std::string path = dir.File("epochlog.db");
  GenerateOptions o;
  o.events = 20'000;
  o.resources = 30;
  o.events_per_epoch = 7'000;
  REQUIRE(GenerateLog(path, o).has_value());
  auto reader = LogReader::Open(path);
  REQUIRE(reader.has_value());
  auto report = Verify(*reader, VerifyOptions{});
  REQUIRE(report.has_value());
  for (const auto& v : report->violations) FAIL_CHECK("seq " << v.seq << ": " << v.message);
  CHECK(report->events >= 20'000);
  CHECK(report->epochs == 3);
  const Run csv = Cli(Cmd("leases", path, Format::kCsv));
  CHECK(csv.status == kExitOk);
}

// The seqs a filtered cursor yields, in order.
std::vector<std::int64_t> Seqs(LogReader& reader, const EventFilter& filter) {
  auto cursor = reader.Events(filter);
  REQUIRE(cursor.has_value());
  std::vector<std::int64_t> seqs;
  for (;;) {
    auto row = cursor->Next();
    REQUIRE(row.has_value());
    if (*row == nullptr) return seqs;
    seqs.push_back((*row)->seq);
  }
}

TEST_CASE(
    "epochlog: lookups by resource, rover and request id find every event across index blocks, in order") {
  TempDir dir;
  const std::string path = dir.File("epochlog.db");
  GenerateOptions o;
  o.events = 20'000;  // five blocks of 4,096 events
  o.resources = 30;
  o.rovers = 7;
  o.events_per_epoch = 7'000;
  REQUIRE(GenerateLog(path, o).has_value());
  auto reader = LogReader::Open(path);
  REQUIRE(reader.has_value());
  CHECK(reader->schema_version() == 2);

  // The expected answers, from one full scan filtered here.
  struct Row {
    std::int64_t seq, epoch;
    std::string resource;
    std::optional<std::int64_t> rover, request_id;
  };
  std::vector<Row> rows;
  {
    auto all = reader->Events(EventFilter{});
    REQUIRE(all.has_value());
    while (const EventRow* r = all->Next().value()) {
      rows.push_back(
          {r->seq, r->epoch, fmt::format("{}/{}", r->tenant, r->resource), r->rover, r->request_id});
    }
  }
  REQUIRE(rows.size() >= 20'000);
  REQUIRE((rows.back().seq >> coordinator::kEventBlockShift) >= 4);
  const auto expect = [&](auto keep) {
    std::vector<std::int64_t> seqs;
    for (const Row& r : rows) {
      if (keep(r)) seqs.push_back(r.seq);
    }
    return seqs;
  };

  EventFilter by_resource;
  by_resource.resource = ResourceName{"mars", rows[100].resource.substr(5)};
  const auto resource_seqs = Seqs(*reader, by_resource);
  CHECK(resource_seqs.size() > 400);
  CHECK(resource_seqs == expect([&](const Row& r) { return r.resource == rows[100].resource; }));
  CHECK((resource_seqs.front() >> coordinator::kEventBlockShift) == 0);
  CHECK((resource_seqs.back() >> coordinator::kEventBlockShift) >= 4);

  EventFilter by_rover;
  by_rover.rover = *rows[200].rover;
  CHECK(Seqs(*reader, by_rover) == expect([&](const Row& r) { return r.rover == rows[200].rover; }));

  EventFilter by_request;
  by_request.request_id = *rows[300].request_id;
  by_request.rover = *rows[300].rover;
  CHECK(Seqs(*reader, by_request) == expect([&](const Row& r) {
          return r.request_id == rows[300].request_id && r.rover == rows[300].rover;
        }));

  EventFilter in_epoch = by_resource;
  in_epoch.epoch = 2;
  const auto epoch_seqs = Seqs(*reader, in_epoch);
  CHECK_FALSE(epoch_seqs.empty());
  CHECK(epoch_seqs == expect([&](const Row& r) { return r.resource == rows[100].resource && r.epoch == 2; }));

  EventFilter newest = by_resource;
  newest.newest_first = true;
  newest.limit = 3;
  CHECK(Seqs(*reader, newest) ==
        std::vector<std::int64_t>{resource_seqs.rbegin(), resource_seqs.rbegin() + 3});

  EventFilter nobody;
  nobody.resource = ResourceName{"mars", "no-such-resource"};
  CHECK(Seqs(*reader, nobody).empty());
}

TEST_CASE("epochlog: a version-1 log (read-only, never migrated) verifies and filters as before") {
  Fixture f;
  const std::string v1 = f.dir.File("v1.db");
  {
    auto db = storage::Database::Open(v1);
    REQUIRE(db.has_value());
    const storage::SchemaSpec& spec = coordinator::EpochLogSchema();
    const storage::SchemaSpec first{spec.name, spec.application_id, spec.migrations.first(1)};
    REQUIRE(storage::Migrate(*db, first).has_value());
    REQUIRE(storage::EpochStore::Open(*db).has_value());
    auto ok =
        db->Exec(fmt::format("ATTACH '{}' AS src; INSERT INTO main.events SELECT * FROM src.events; "
                             "INSERT INTO main.resources SELECT * FROM src.resources; INSERT INTO "
                             "main.leases SELECT * FROM src.leases; "
                             "INSERT INTO main.waiters SELECT * FROM src.waiters; INSERT INTO main.epochs "
                             "SELECT * FROM src.epochs; "
                             "DETACH src",
                             f.path));
    REQUIRE_MESSAGE(ok.has_value(), ok.error().message);
  }
  const std::string bytes = Bytes(v1);
  const Run verify = Cli(Cmd("verify", v1));
  CHECK_MESSAGE(verify.status == kExitOk, verify.out << verify.err);
  CommandLine pad = Cmd("leases", v1);
  pad.resource = "mars/pad";
  std::vector<std::string> kinds;
  for (const auto& e : Cli(pad).Json()) kinds.push_back(e["kind"]);
  CHECK(kinds == std::vector<std::string>{"deny", "grant", "restore", "expiry"});
  CHECK(Cli(Cmd("leases", v1, Format::kCsv)).out == Cli(Cmd("leases", f.path, Format::kCsv)).out);
  CHECK(QueryInt(v1, "PRAGMA user_version") == 1);
  CHECK(Bytes(v1) == bytes);
}

TEST_CASE("epochlog: output formats: UTC text, JSON escaping and CSV quoting") {
  for (const std::int64_t ms : {std::int64_t{0}, std::int64_t{-1}, std::int64_t{1'000'000'000},
                                std::int64_t{838'000'000'123}, std::int64_t{-946'684'800'001},
                                std::int64_t{400'000'000'000'000}, std::int64_t{-100'000'000'000'000}}) {
    CAPTURE(ms);
    CHECK(FormatUtc(ms) == DtnTime::FromMillis(ms).ToIso8601());
  }
  CHECK_FALSE(FormatUtc(INT64_MAX).empty());
  CHECK_FALSE(FormatUtc(INT64_MIN).empty());

  std::string json;
  AppendJsonString(json, "a\"b\\c\nd\x01 \xc3\xa9 \xff \xed\xa0\x80 \xf0\x9f\x9a\x80");
  const auto parsed = nlohmann::json::parse(json);
  CHECK(parsed.get<std::string>() == "a\"b\\c\nd\x01 \xc3\xa9 \xEF\xBF\xBD \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD \xf0\x9f\x9a\x80");

  std::string csv;
  AppendCsvField(csv, "plain");
  csv += ',';
  AppendCsvField(csv, "a,\"b\"\nc");
  CHECK(csv == "plain,\"a,\"\"b\"\"\nc\"");

  StringSink sink;
  {
    RowWriter rows(sink, OutputOptions{Format::kTable, TimeStyle::kUtc},
                   {{"seq", Column::Kind::kInt, 4}, {"term_ms", Column::Kind::kDuration, 8}, {"at", Column::Kind::kTime, 0}});
    const Field fields[] = {Field::Int(7), Field::Int(90'000), Field::Int(0)};
    rows.Row(fields);
  }
  CHECK(sink.text() == "SEQ   TERM      AT\n7     1m 30s    2000-01-01T00:00:00.000Z\n");

  CHECK(ParseTimeArg("2000-01-01T00:00:01Z").value() == 1'000);
  CHECK(ParseTimeArg("1500").value() == 1'500);
  CHECK_FALSE(ParseTimeArg("soon").has_value());
  CHECK_FALSE(ParseResourceArg("no-slash").has_value());
}
