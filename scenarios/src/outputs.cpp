// report.json, events.jsonl, timeline.svg and the summary. Nothing here reads a clock or a path
// that could differ between two runs: the outputs of a run are a function of (scenario, seed).
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "epochlog/timeline_svg.h"
#include "scenarios/replay.h"
#include "timeline.h"

namespace ics::scenarios {
namespace {
using json = nlohmann::ordered_json;

double Seconds(Duration d) { return static_cast<double>(d.count()) / 1000.0; }
}  // namespace

std::string RenderTimeline(const Scenario& s, const ReplayResult& r, const dtn::ContactPlan& plan, DtnTime end) {
  epochlog::TimelineModel m;
  m.title = fmt::format("{} (seed {}): who believed they held what, in true time", s.name, r.seed);
  m.from = s.start;
  m.to = end;
  std::map<coordinator::ResourceName, std::size_t> lane_of;
  std::set<coordinator::ResourceName> names;
  for (const auto& h : r.history.holds) names.insert(h.resource);
  for (const auto& name : names) {
    lane_of[name] = m.lanes.size();
    m.lanes.push_back({name.ToString(), {}, {}, {}});
  }
  for (const auto& h : r.history.holds) {
    auto& lane = m.lanes[lane_of[h.resource]];
    lane.bars.push_back({h.from, std::max(h.from, std::min(h.until, end)), fmt::format("{} #{}", h.rover, h.token),
                         fmt::format("{} held {} with token {} (epoch {}) from {} to {} in its own view", h.rover,
                                     h.resource.ToString(), h.token, h.epoch, h.from.ToIso8601(), h.until.ToIso8601()),
                         h.rover_id, h.until > end});
  }
  for (const auto& v : r.violations) {
    auto it = lane_of.find(v.resource);
    if (it == lane_of.end()) continue;
    m.lanes[it->second].markers.push_back({v.at, epochlog::TimelineMarker::Style::kDeny,
                                           fmt::format("VIOLATION {}: {}", ViolationKindName(v.kind), v.detail)});
  }
  // Faults.
  epochlog::TimelineLane faults{"faults (partitions, crashes)", {}, {}, {}};
  for (const auto& p : s.partitions) {
    std::string a, b;
    for (const auto& x : p.side_a) a += (a.empty() ? "" : ",") + x;
    for (const auto& x : p.side_b) b += (b.empty() ? "" : ",") + x;
    faults.spans.push_back({s.start + p.from, s.start + p.until, epochlog::TimelineSpan::Style::kOutage,
                            fmt::format("partition {} | {}", a, b)});
  }
  for (const auto& c : s.crashes) {
    faults.spans.push_back({s.start + c.at, s.start + c.at + c.down_for, epochlog::TimelineSpan::Style::kHoldOff,
                            fmt::format("{} {} for {}", c.node, c.kind == CrashKind::kSleep ? "asleep" : "down",
                                        clock::FormatDuration(c.down_for))});
  }
  m.lanes.push_back(std::move(faults));
  // Contacts, one lane per directed link, limited so a year-long plan stays drawable.
  std::map<std::pair<NodeNumber, NodeNumber>, std::size_t> contact_lane;
  std::map<NodeNumber, std::string> name_of;
  for (const auto& n : s.nodes) name_of[n.id] = n.name;
  for (const auto& c : plan.contacts()) {
    if (c.from == c.to || c.end <= s.start || c.start >= end) continue;
    if (!name_of.contains(c.from) || !name_of.contains(c.to)) continue;
    auto [it, inserted] = contact_lane.try_emplace({c.from, c.to}, m.lanes.size());
    if (inserted) m.lanes.push_back({fmt::format("contacts {} -> {}", name_of[c.from], name_of[c.to]), {}, {}, {}});
    auto& lane = m.lanes[it->second];
    if (lane.spans.size() >= 5'000) continue;
    lane.spans.push_back({std::max(c.start, s.start), std::min(c.end, end), epochlog::TimelineSpan::Style::kGap,
                          fmt::format("contact {} -> {} at {} B/s", name_of[c.from], name_of[c.to], c.rate_bytes_per_s)});
  }
  for (const auto& e : r.history.epochs) {
    m.epochs.push_back({e.at, fmt::format("epoch {}", e.epoch), fmt::format("coordinator epoch {} started", e.epoch)});
  }
  m.footnote = "Bars: each rover's own view of its lease (from its grant's arrival to its view's end or its release), "
               "true time. Shaded: contacts; hatched: partitions and crashes; lines: coordinator epochs.";
  return epochlog::RenderTimelineSvg(m);
}

std::string ReportJson(const ReplayResult& r) {
  json j;
  j["scenario"] = r.scenario;
  j["seed"] = r.seed;
  j["simulated_s"] = Seconds(r.simulated);
  j["events"] = r.events;
  j["requests"] = r.requests;
  j["acquisitions_granted"] = r.granted;
  j["denied"] = r.denied;
  j["gave_up"] = r.gave_up;
  j["lapsed"] = r.lapsed;
  j["acquisition_latency_s"] = json{{"count", r.latency.count}, {"p50", Seconds(r.latency.p50)},
                                    {"p90", Seconds(r.latency.p90)}, {"p99", Seconds(r.latency.p99)},
                                    {"max", Seconds(r.latency.max)}};
  json resources = json::array();
  for (const auto& f : r.resources) {
    resources.push_back(json{{"resource", f.resource}, {"grants", f.grants}, {"held_s", Seconds(f.held)},
                             {"holder_utilization", f.utilization},
                             {"idle_while_waiting_s", Seconds(f.idle_while_waiting)}});
  }
  j["resources"] = resources;
  const double per = r.granted == 0 ? 0.0 : 1.0 / static_cast<double>(r.granted);
  j["messages"] = json{{"lease_messages", r.lease_messages},
                       {"bundle_transmissions", r.bundle_transmissions},
                       {"messages_per_acquisition", static_cast<double>(r.lease_messages) * per},
                       {"bundles_per_acquisition", static_cast<double>(r.bundle_transmissions) * per},
                       {"bundles_lost", r.bundles_lost},
                       {"bundles_duplicated", r.bundles_duplicated},
                       {"expired_bundles", r.expired_bundles}};
  if (r.bulk.transfers > 0) {  // only with [[bulk]], so other reports keep their form
    j["bulk"] = json{{"transfers", r.bulk.transfers},
                     {"transfers_lost", r.bulk.transfers_lost},
                     {"bundles_sent", r.bulk.bundles_sent},
                     {"bundles_refused", r.bulk.bundles_refused},
                     {"bundles_delivered", r.bulk.bundles_delivered},
                     {"bytes_delivered", r.bulk.bytes_delivered}};
  }
  json nodes = json::array();
  for (const auto& n : r.nodes) {
    nodes.push_back(json{{"node", n.name}, {"store_bundles_peak", n.store_bundles_peak},
                         {"store_bytes_peak", n.store_bytes_peak}, {"transmissions", n.transmissions},
                         {"delivered", n.delivered}, {"expired", n.expired}, {"restarts", n.restarts}});
  }
  j["bundle_stores"] = nodes;
  j["guards"] = json{{"uses_accepted", r.uses_accepted}, {"uses_rejected", r.uses_rejected}};
  json epochs = json::array();
  for (const auto& e : r.history.epochs) epochs.push_back(json{{"epoch", e.epoch}, {"started", e.at.ToIso8601()}});
  j["epochs"] = json{{"count", r.epochs}, {"starts", epochs}};
  json violations = json::array();
  for (const auto& v : r.violations) {
    violations.push_back(json{{"kind", std::string(ViolationKindName(v.kind))}, {"at", v.at.ToIso8601()},
                              {"resource", v.resource.ToString()}, {"detail", v.detail}});
  }
  j["safety_violations"] = violations;
  j["safety_violation_count"] = r.violations.size();
  j["warnings"] = r.warnings;
  return j.dump(2, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string SummaryText(const ReplayResult& r) {
  std::string s = fmt::format("{} seed {}: simulated {} in {} events\n", r.scenario, r.seed,
                              clock::FormatDuration(r.simulated), r.events);
  s += fmt::format("  requests {}, granted {}, denied {}, gave up {}; latency p50 {} p90 {} p99 {} max {}\n", r.requests,
                   r.granted, r.denied, r.gave_up, clock::FormatDuration(r.latency.p50),
                   clock::FormatDuration(r.latency.p90), clock::FormatDuration(r.latency.p99),
                   clock::FormatDuration(r.latency.max));
  s += fmt::format("  epochs {}, lease messages {}, bundle transmissions {} (lost {}, duplicated {}), expired {}\n",
                   r.epochs, r.lease_messages, r.bundle_transmissions, r.bundles_lost, r.bundles_duplicated,
                   r.expired_bundles);
  if (r.bulk.transfers > 0) {
    s += fmt::format("  bulk: {} transfers, {} of {} bundles delivered ({} bytes)\n", r.bulk.transfers,
                     r.bulk.bundles_delivered, r.bulk.bundles_sent, r.bulk.bytes_delivered);
  }
  for (const auto& w : r.warnings) s += fmt::format("  warning: {}\n", w);
  if (r.violations.empty()) {
    s += "  safety: no violations\n";
  } else {
    s += fmt::format("  SAFETY VIOLATED: {} violation(s); reproduce with --seed {}\n", r.violations.size(), r.seed);
    for (std::size_t i = 0; i < r.violations.size() && i < 5; ++i) {
      const auto& v = r.violations[i];
      s += fmt::format("    {} {} {}: {}\n", v.at.ToIso8601(), ViolationKindName(v.kind), v.resource.ToString(), v.detail);
    }
  }
  return s;
}

std::expected<void, std::string> WriteOutputs(const ReplayResult& r, const std::string& out_dir) {
  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  if (ec) return std::unexpected(fmt::format("{}: cannot create: {}", out_dir, ec.message()));
  auto write = [&](const std::string& name, auto&& body) -> std::expected<void, std::string> {
    const std::string path = out_dir + "/" + name;
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f) return std::unexpected(fmt::format("{}: cannot open for writing", path));
    body(f);
    f.flush();
    if (!f) return std::unexpected(fmt::format("{}: write failed", path));
    return {};
  };
  if (auto ok = write("report.json", [&](std::ofstream& f) { f << ReportJson(r); }); !ok) return ok;
  if (auto ok = write("events.jsonl", [&](std::ofstream& f) {
        for (const auto& line : r.event_lines) f << line << '\n';
      });
      !ok) {
    return ok;
  }
  return write("timeline.svg", [&](std::ofstream& f) { f << r.timeline_svg; });
}

}  // namespace ics::scenarios
