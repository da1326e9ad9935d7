// Stretching a scenario for the benchmark: the plan is parsed, copied per period and per clone,
// and written back as ION lines with +seconds offsets (exact to the millisecond).
#include "scenarios/bench.h"

#include <algorithm>
#include <map>

#include <fmt/format.h>

#include "dtn/contact_plan.h"

namespace ics::scenarios {
namespace {
std::string Offset(DtnTime start, DtnTime t) {
  const std::int64_t ms = (t - start).count();
  return fmt::format("{}{}.{:03}", ms < 0 ? "-" : "+", std::abs(ms) / 1000, std::abs(ms) % 1000);
}
}  // namespace

std::expected<Scenario, std::string> StretchScenario(const Scenario& base, int rovers, Duration duration) {
  Scenario s = base;
  if (base.duration.count() <= 0) return std::unexpected("the scenario has no duration");
  auto plan = dtn::ParseContactPlan(base.plan_text, base.plan_source, base.start);
  if (!plan) return std::unexpected(plan.error().ToString());
  std::vector<const NodeSpec*> templates;
  NodeNumber next_id = 0;
  for (const auto& n : base.nodes) {
    if (n.role == Role::kRover) templates.push_back(&n);
    next_id = std::max(next_id, n.id);
  }
  if (templates.empty()) return std::unexpected("the scenario has no rover to clone");
  // clone id -> template id; clone name -> template name
  std::map<NodeNumber, std::vector<NodeNumber>> clones_of;
  std::map<std::string, std::vector<std::string>> clone_names_of;
  for (int k = static_cast<int>(templates.size()); k < rovers; ++k) {
    const NodeSpec& t = *templates[static_cast<std::size_t>(k) % templates.size()];
    NodeSpec c = t;
    c.id = ++next_id;
    c.name = fmt::format("{}-c{}", t.name, k);
    clones_of[t.id].push_back(c.id);
    clone_names_of[t.name].push_back(c.name);
    s.nodes.push_back(c);
  }
  const std::int64_t periods = std::max<std::int64_t>(1, (duration.count() + base.duration.count() - 1) / base.duration.count());
  auto ids = [&](NodeNumber n) {
    std::vector<NodeNumber> v{n};
    if (auto it = clones_of.find(n); it != clones_of.end()) v.insert(v.end(), it->second.begin(), it->second.end());
    return v;
  };
  std::string text;
  for (std::int64_t p = 0; p < periods; ++p) {
    const Duration shift = base.duration * p;
    for (const auto& c : plan->contacts()) {
      for (NodeNumber f : ids(c.from)) {
        for (NodeNumber t : ids(c.to)) {
          if ((f != c.from) && (t != c.to)) continue;  // clones talk to the template's peers, not to each other
          text += fmt::format("a contact {} {} {} {} {}\n", Offset(base.start, c.start + shift),
                              Offset(base.start, c.end + shift), f, t, c.rate_bytes_per_s);
        }
      }
    }
    for (const auto& r : plan->ranges()) {
      for (NodeNumber a : ids(r.a)) {
        for (NodeNumber b : ids(r.b)) {
          if ((a != r.a) && (b != r.b)) continue;
          text += fmt::format("a range {} {} {} {} {}.{:03}\n", Offset(base.start, r.start + shift),
                              Offset(base.start, r.end + shift), a, b, r.owlt.count() / 1000, r.owlt.count() % 1000);
        }
      }
    }
  }
  s.plan_text = text;
  s.plan_source = base.plan_source + " (stretched)";
  auto names = [&](const std::string& n) {
    std::vector<std::string> v{n};
    if (auto it = clone_names_of.find(n); it != clone_names_of.end()) v.insert(v.end(), it->second.begin(), it->second.end());
    return v;
  };
  auto widen = [&](const std::vector<std::string>& side) {
    std::vector<std::string> out;
    for (const auto& n : side) {
      for (const auto& x : names(n)) out.push_back(x);
    }
    return out;
  };
  s.requests.clear();
  s.partitions.clear();
  s.crashes.clear();
  for (std::int64_t p = 0; p < periods; ++p) {
    const Duration shift = base.duration * p;
    for (const auto& q : base.requests) {
      for (const auto& n : names(q.rover)) {
        Request c = q;
        c.rover = n;
        c.at += shift;
        if (c.at < duration) s.requests.push_back(c);
      }
    }
    for (const auto& part : base.partitions) {
      Partition c = part;
      c.side_a = widen(part.side_a);
      c.side_b = widen(part.side_b);
      c.from += shift;
      c.until += shift;
      if (c.from < duration) s.partitions.push_back(c);
    }
    for (const auto& cr : base.crashes) {
      Crash c = cr;
      c.at += shift;
      if (c.at < duration) s.crashes.push_back(c);
    }
  }
  for (auto& w : s.random_workloads) {
    w.rovers = widen(w.rovers);
    if (w.until >= base.duration) w.until = duration;
  }
  s.duration = duration;
  s.name = base.name + " (stretched)";
  return s;
}

}  // namespace ics::scenarios
