// Helpers for the live lease tests (see lease_net.h): spawning and reading real daemons.
#include "leases/lease_net.h"

#include <doctest/doctest.h>
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include "clock/clock.h"
#include "storage/database.h"

namespace ics::leases {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string& CoordinatorExe() {
  static const std::string exe = ICS_COORDINATOR_EXE;
  return exe;
}
const std::string& AgentExe() {
  static const std::string exe = ICS_AGENT_EXE;
  return exe;
}
const std::string& DtnExe() {
  static const std::string exe = ICS_DTN_EXE;
  return exe;
}
std::optional<std::string> EpochlogExe() {
#ifdef ICS_EPOCHLOG_EXE
  return std::string(ICS_EPOCHLOG_EXE);
#else
  return std::nullopt;
#endif
}


std::chrono::milliseconds Wall(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000 * Slowdown()));
}

std::string Show(const ClientResult& r) { return fmt::format("{}: {}", r.status.ToString(), r.output); }

std::int64_t Int(const json& j, const char* key) {
  return j.contains(key) && j[key].is_number() ? j[key].get<std::int64_t>() : -1;
}
std::string Str(const json& j, const char* key) {
  return j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::optional<json> ParseLine(std::string_view line) {
  json j = json::parse(line, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::vector<json> JsonLines(const fs::path& path, std::string_view event) {
  std::vector<json> out;
  for (const auto& line : test::ReadLines(path)) {
    auto j = ParseLine(line);
    if (!j) continue;
    if (!event.empty() && j->value("event", std::string()) != event) continue;
    out.push_back(std::move(*j));
  }
  return out;
}

// ---- Daemon ----

Daemon::Daemon(LeaseNet& net, Kind kind, NodeNumber id, std::vector<std::string> extra)
    : net_(net), kind_(kind), id_(id), extra_(std::move(extra)) {}

std::string Daemon::log_path() const { return (net_.dir() / fmt::format("log{}", id_)).string(); }
std::string Daemon::err_path() const { return (net_.dir() / fmt::format("err{}", id_)).string(); }
std::string Daemon::data_dir() const { return (net_.dir() / fmt::format("n{}", id_)).string(); }
std::string Daemon::control() const {
  return fmt::format("ipc://{}", (net_.dir() / fmt::format("ctl{}", id_)).string());
}
std::string Daemon::app() const {
  return fmt::format("ipc://{}", (net_.dir() / fmt::format("app{}", id_)).string());
}

void Daemon::Start() {
  REQUIRE_FALSE(child_.Running());
  std::vector<std::string> argv;
  switch (kind_) {
    case Kind::kCoordinator:
      argv = {CoordinatorExe()};
      break;
    case Kind::kRelay:
      argv = {DtnExe(), "node", "--app", app()};
      break;
    case Kind::kAgent:
      argv = {AgentExe(), "run", "--control", control()};
      break;
    case Kind::kGuard:
      argv = {AgentExe(), "guard", "--app", app()};
      break;
  }
  for (auto& a : net_.LinkArgs(id_, data_dir())) argv.push_back(std::move(a));
  for (const auto& a : extra_) argv.push_back(a);
  auto child = Child::Spawn(argv, log_path(), err_path());
  REQUIRE_MESSAGE(child.has_value(), child.error());
  child_ = std::move(*child);
  ++starts_;
  const std::size_t want = starts_;
  LineFollower log(log_path());
  const bool started = log.WaitForCount(
      [](std::string_view l) { return l.find("\"event\":\"start\"") != std::string_view::npos; }, want,
      Wall(15));
  REQUIRE_MESSAGE(started, fmt::format("ipn:{} did not start: {}\nargv: {}\nstderr: {}", id_,
                                       child_.Running() ? "running" : child_.status()->ToString(),
                                       fmt::join(argv, " "), test::Tail(err_path())));
}

// ---- LeaseNet ----

LeaseNet::LeaseNet(std::string_view name, NetOptions options,
                   std::vector<std::pair<NodeNumber, NodeNumber>> links)
    : dir_(fmt::format("ics-leases-{}", name)),
      options_(std::move(options)),
      origin_(clock::SystemClock().Now()),
      links_(std::move(links)) {
  std::ofstream(plan_path()) << options_.plan;
  std::vector<NodeNumber> ids;
  for (auto [a, b] : links_) {
    for (NodeNumber n : {a, b}) {
      if (std::find(ids.begin(), ids.end(), n) == ids.end()) ids.push_back(n);
    }
  }
  const auto ports = test::PickFreeTcpPorts(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) ports_[ids[i]] = ports[i];
}

LeaseNet::~LeaseNet() { nodes_.clear(); }  // children first (SIGKILLed), then the directory

std::vector<NodeNumber> LeaseNet::neighbours(NodeNumber id) const {
  std::vector<NodeNumber> out;
  for (auto [a, b] : links_) {
    if (a == id) out.push_back(b);
    if (b == id) out.push_back(a);
  }
  return out;
}

std::vector<std::string> LeaseNet::LinkArgs(NodeNumber id, const std::string& data_dir) const {
  std::vector<std::string> argv{"--id",          fmt::format("ipn:{}", id),
                                "--data",        data_dir,
                                "--plan",        plan_path(),
                                "--listen",      fmt::format("tcp://127.0.0.1:{}", port(id)),
                                "--time-scale",  fmt::format("{}", options_.time_scale),
                                "--time-origin", origin_.ToIso8601(),
                                "--plan-epoch",  origin_.ToIso8601()};
  for (NodeNumber n : neighbours(id)) {
    argv.push_back("--neighbour");
    argv.push_back(fmt::format("ipn:{}=tcp://127.0.0.1:{}", n, port(n)));
  }
  if (options_.emulate_light_time) argv.push_back("--emulate-light-time");
  return argv;
}

Daemon& LeaseNet::AddCoordinator(NodeNumber id, std::vector<std::string> extra) {
  return *(nodes_[id] = std::make_unique<Daemon>(*this, Kind::kCoordinator, id, std::move(extra)));
}
Daemon& LeaseNet::AddRelay(NodeNumber id, std::vector<std::string> extra) {
  return *(nodes_[id] = std::make_unique<Daemon>(*this, Kind::kRelay, id, std::move(extra)));
}
Daemon& LeaseNet::AddAgent(NodeNumber id, NodeNumber coordinator, std::vector<std::string> extra) {
  extra.insert(extra.begin(), {"--coordinator", fmt::format("ipn:{}", coordinator)});
  return *(nodes_[id] = std::make_unique<Daemon>(*this, Kind::kAgent, id, std::move(extra)));
}
Daemon& LeaseNet::AddGuard(NodeNumber id, std::vector<std::string> resources,
                           std::vector<std::string> extra) {
  for (const auto& r : resources) {
    extra.push_back("--resource");
    extra.push_back(r);
  }
  return *(nodes_[id] = std::make_unique<Daemon>(*this, Kind::kGuard, id, std::move(extra)));
}

Daemon& LeaseNet::node(NodeNumber id) {
  auto it = nodes_.find(id);
  REQUIRE_MESSAGE(it != nodes_.end(), fmt::format("no daemon ipn:{} in this net", id));
  return *it->second;
}

void LeaseNet::StartAll() {
  for (auto& [id, d] : nodes_) d->Start();
}

clock::DtnTime LeaseNet::MissionNow() const {
  const auto wall = clock::SystemClock().Now() - origin_;
  return origin_ +
         clock::Duration(static_cast<std::int64_t>(static_cast<double>(wall.count()) * options_.time_scale));
}

Child LeaseNet::StartClient(NodeNumber agent, const std::string& verb, std::vector<std::string> args,
                            const std::string& name) {
  std::vector<std::string> argv{AgentExe(), verb};
  for (auto& a : args) argv.push_back(std::move(a));
  argv.insert(argv.end(), {"--via", node(agent).control(), "--json"});
  auto child = Child::Spawn(argv, (dir() / (name + ".out")).string(), (dir() / (name + ".err")).string());
  REQUIRE_MESSAGE(child.has_value(), child.error());
  return std::move(*child);
}

ClientResult LeaseNet::Finish(Child& client, const std::string& name, std::chrono::milliseconds timeout) {
  ClientResult r;
  auto status = client.Wait(timeout);
  r.status = status ? *status : client.Kill();
  const auto lines = JsonLines(dir() / (name + ".out"));
  if (!lines.empty()) r.answer = lines.back();
  r.output = test::ReadFile(dir() / (name + ".out")) + test::ReadFile(dir() / (name + ".err"));
  if (!status) r.output += fmt::format(" [no answer within {} ms: killed]", timeout.count());
  return r;
}

ClientResult LeaseNet::Client(NodeNumber agent, const std::string& verb, std::vector<std::string> args,
                              std::chrono::milliseconds timeout) {
  const std::string name = fmt::format("client{}-{}-ipn{}", ++clients_, verb, agent);
  Child child = StartClient(agent, verb, std::move(args), name);
  return Finish(child, name, timeout);
}

void LeaseNet::KeepOnFailure(bool failed) {
  if (failed || std::getenv("ICS_KEEP_LEASE_NET") != nullptr) {
    dir_.Keep();
    MESSAGE(fmt::format("logs and databases kept in {}", dir().string()));
  }
}

// ---- the epoch log ----

namespace {

storage::Database OpenLog(const fs::path& db) {
  storage::OpenOptions options;
  options.read_only = true;
  auto opened = storage::Database::Open(db.string(), options);
  REQUIRE_MESSAGE(opened.has_value(), fmt::format("epoch log {}: {}", db.string(), opened.error().message));
  return std::move(*opened);
}

std::optional<std::int64_t> OptionalInt(const storage::Statement& s, int column) {
  if (s.IsNull(column)) return std::nullopt;
  return s.Int(column);
}

}  // namespace

std::vector<LogEvent> ReadEpochLog(const fs::path& db) {
  storage::Database log = OpenLog(db);
  auto statement = log.Prepare(
      "SELECT seq, at_dtn_ms, epoch, kind, COALESCE(tenant || '/' || resource, ''), COALESCE(rover, 0), "
      "COALESCE(token, 0), lease_expires_dtn_ms, regrant_at_dtn_ms, reason FROM events ORDER BY seq");
  REQUIRE_MESSAGE(statement.has_value(), statement.error().message);
  std::vector<LogEvent> out;
  while (true) {
    auto row = statement->Step();
    REQUIRE_MESSAGE(row.has_value(), row.error().message);
    if (!*row) break;
    LogEvent e;
    e.seq = statement->Int(0);
    e.at_ms = statement->Int(1);
    e.epoch = statement->Int(2);
    e.kind = statement->Text(3);
    e.resource = statement->Text(4);
    e.rover = statement->Int(5);
    e.token = statement->Int(6);
    e.expires_ms = OptionalInt(*statement, 7);
    e.regrant_at_ms = OptionalInt(*statement, 8);
    e.reason = statement->Text(9);
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<std::int64_t> ReadEpochs(const fs::path& db) {
  storage::Database log = OpenLog(db);
  auto statement = log.Prepare("SELECT epoch FROM epochs ORDER BY epoch");
  REQUIRE_MESSAGE(statement.has_value(), statement.error().message);
  std::vector<std::int64_t> out;
  while (true) {
    auto row = statement->Step();
    REQUIRE_MESSAGE(row.has_value(), row.error().message);
    if (!*row) break;
    out.push_back(statement->Int(0));
  }
  return out;
}

}  // namespace ics::leases
