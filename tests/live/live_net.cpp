// Helpers for the live-network tests (see live_net.h): spawning and reading real ics-dtn daemons.
#include "live/live_net.h"

#include <doctest/doctest.h>
#include <fmt/format.h>
#include <signal.h>

#include <filesystem>
#include <fstream>

#include "clock/clock.h"

namespace ics::live {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const std::string& DtnExe() {
  static const std::string exe = ICS_DTN_EXE;
  return exe;
}


LiveNode::LiveNode(LiveNet& net, clock::NodeNumber id, int port, std::vector<clock::NodeNumber> neighbours)
    : net_(net),
      id_(id),
      port_(port),
      neighbours_(std::move(neighbours)),
      log_(net.dir() / fmt::format("log{}", id)),
      err_(net.dir() / fmt::format("err{}", id)) {}

std::string LiveNode::listen() const { return fmt::format("tcp://127.0.0.1:{}", port_); }
std::string LiveNode::app() const { return fmt::format("ipc://{}", net_.dir() / fmt::format("a{}", id_)); }
std::string LiveNode::log_path() const { return net_.dir() / fmt::format("log{}", id_); }
std::string LiveNode::err_path() const { return net_.dir() / fmt::format("err{}", id_); }

void LiveNode::Start() {
  REQUIRE_FALSE(child_.Running());
  const LiveNetOptions& o = net_.options();
  std::vector<std::string> argv{DtnExe(), "node", "--id", fmt::format("ipn:{}", id_), "--data",
                                net_.dir() / fmt::format("n{}", id_), "--plan", net_.plan_path(), "--listen",
                                listen(), "--app", app(), "--time-scale", fmt::format("{}", o.time_scale),
                                "--time-origin", net_.origin().ToIso8601(), "--plan-epoch",
                                net_.origin().ToIso8601()};
  for (auto n : neighbours_) {
    argv.push_back("--neighbour");
    argv.push_back(fmt::format("ipn:{}=tcp://127.0.0.1:{}", n, net_.port(n)));
  }
  if (o.emulate_light_time) argv.push_back("--emulate-light-time");
  if (o.quiet) argv.push_back("--quiet");
  auto child = Child::Spawn(argv, log_path(), err_path());
  REQUIRE_MESSAGE(child.has_value(), child.error());
  child_ = std::move(*child);
  ++starts_;
  const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(10'000 * Slowdown()));
  bool started;
  if (o.quiet) {
    const fs::path socket = net_.dir() / fmt::format("a{}", id_);
    started = test::WaitUntil([&] { return fs::exists(socket) || !child_.Running(); }, timeout) && child_.Running();
  } else {
    const std::size_t want = starts_;
    started = log_.WaitForCount([](std::string_view l) { return l.find("\"event\":\"start\"") != l.npos; }, want,
                                timeout);
  }
  REQUIRE_MESSAGE(started, fmt::format("node {} did not start: {}\nstderr: {}", id_,
                                       child_.status() ? child_.status()->ToString() : "running",
                                       test::Tail(err_path())));
}

json LiveNode::Counters() {
  err_.ReadNew();
  const std::size_t before = err_.lines().size();
  child_.Signal(SIGUSR1);
  std::optional<json> counters;
  std::size_t checked = before;
  test::WaitUntil(
      [&] {
        err_.ReadNew();
        for (; checked < err_.lines().size(); ++checked) {
          auto j = ParseLine(err_.lines()[checked]);
          if (j && j->contains("link") && j->contains("bundles")) {
            counters = std::move(j);
            return true;
          }
        }
        return false;
      },
      std::chrono::milliseconds(static_cast<std::int64_t>(5000 * Slowdown())));
  REQUIRE_MESSAGE(counters.has_value(), fmt::format("node {}: no counters line after SIGUSR1", id_));
  return *counters;
}

LiveNet::LiveNet(std::string_view name, LiveNetOptions options, std::vector<clock::NodeNumber> nodes,
                 std::vector<std::pair<clock::NodeNumber, clock::NodeNumber>> links)
    : dir_(fmt::format("ics-live-{}", name)),
      options_(std::move(options)),
      origin_(clock::SystemClock().Now()),
      origin_steady_(std::chrono::steady_clock::now()),
      links_(std::move(links)) {
  {
    std::ofstream plan(plan_path());
    plan << options_.plan;
  }
  const auto ports = test::PickFreeTcpPorts(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) ports_[nodes[i]] = ports[i];
  for (auto n : nodes) {
    std::vector<clock::NodeNumber> neighbours;
    for (auto [a, b] : links_) {
      if (a == n) neighbours.push_back(b);
      if (b == n) neighbours.push_back(a);
    }
    nodes_[n] = std::make_unique<LiveNode>(*this, n, ports_[n], neighbours);
  }
}

LiveNet::~LiveNet() {
  // Children first (their destructors SIGKILL them), then the directory.
  nodes_.clear();
}

clock::DtnTime LiveNet::PlanTime(double seconds) const {
  return origin_ + clock::Duration(static_cast<std::int64_t>(std::llround(seconds * 1000)));
}

clock::DtnTime LiveNet::MissionNow() const {
  const auto wall = std::chrono::steady_clock::now() - origin_steady_;
  const double ms = std::chrono::duration<double, std::milli>(wall).count() * options_.time_scale;
  return origin_ + clock::Duration(static_cast<std::int64_t>(ms));
}

std::chrono::steady_clock::time_point LiveNet::WallAt(clock::DtnTime t) const {
  const double wall_ms = static_cast<double>((t - origin_).count()) / options_.time_scale;
  return origin_steady_ + std::chrono::microseconds(static_cast<std::int64_t>(wall_ms * 1000));
}

void LiveNet::StartAll() {
  for (auto& [id, node] : nodes_) node->Start();
}

void LiveNet::WaitLinksUp(std::chrono::milliseconds timeout) {
  for (auto [a, b] : links_) {
    for (auto [self, peer] : {std::pair{a, b}, std::pair{b, a}}) {
      const std::string want = fmt::format("\"neighbour\":{},", peer);
      auto line = node(self).log().WaitForLine(
          [&](std::string_view l) { return l.find("\"link-up\"") != l.npos && l.find(want) != l.npos; }, timeout);
      REQUIRE_MESSAGE(line.has_value(), fmt::format("link {} -> {} never came up", self, peer));
    }
  }
}

Child LiveNet::Send(clock::NodeNumber via, const std::string& to, const std::vector<std::string>& extra,
                    const std::string& tag) {
  std::vector<std::string> argv{DtnExe(), "send", "--via", node(via).app(), "--to", to};
  argv.insert(argv.end(), extra.begin(), extra.end());
  auto child = Child::Spawn(argv, dir_ / fmt::format("send-{}", tag));
  REQUIRE_MESSAGE(child.has_value(), child.error());
  return std::move(*child);
}

Child LiveNet::Recv(clock::NodeNumber via, const std::string& endpoint, std::uint64_t count, double timeout_s,
                    const std::string& tag) {
  std::vector<std::string> argv{DtnExe(), "recv", "--via", node(via).app(), "--endpoint", endpoint, "--count",
                                std::to_string(count), "--timeout", fmt::format("{}", timeout_s), "--json"};
  auto child = Child::Spawn(argv, dir_ / fmt::format("recv-{}", tag), dir_ / fmt::format("recv-{}.err", tag));
  REQUIRE_MESSAGE(child.has_value(), child.error());
  return std::move(*child);
}

std::optional<json> ParseLine(std::string_view line) {
  if (line.empty() || line.front() != '{') return std::nullopt;
  json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::int64_t TsMillis(const json& event) {
  auto t = clock::DtnTime::ParseIso8601(event.at("ts").get<std::string>());
  REQUIRE_MESSAGE(t.has_value(), event.dump());
  return t->millis();
}

std::vector<Received> ReadReceived(const std::string& path) {
  std::vector<Received> out;
  for (const auto& line : test::ReadLines(path)) {
    auto j = ParseLine(line);
    REQUIRE_MESSAGE(j.has_value(), fmt::format("recv printed a non-JSON line: {}", line));
    Received r;
    r.priority = j->value("priority", std::string());
    r.size = j->value("size", std::size_t{0});
    r.id = j->value("id", std::string());
    const std::string hex = j->value("payload_hex", std::string());
    REQUIRE_MESSAGE(hex.size() >= 16, fmt::format("payload too short for a sequence number: {}", line));
    r.sequence = std::stoull(hex.substr(0, 16), nullptr, 16);
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace ics::live
