#include "scenarios/scenario_file.h"

#include <fmt/format.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <system_error>
#include <utility>

#include "coordinator/protocol.h"
#include "dtn/contact_plan.h"

namespace ics::scenarios {

std::string ScenarioError::ToString() const {
  std::string out = file;
  if (line > 0) out += fmt::format(":{}:{}", line, column);
  out += ": ";
  if (!key.empty()) out += key + ": ";
  out += message;
  return out;
}

std::string_view RoleName(Role role) {
  switch (role) {
    case Role::kCoordinator:
      return "coordinator";
    case Role::kRover:
      return "rover";
    case Role::kRelay:
      return "relay";
    case Role::kGuard:
      return "guard";
  }
  return "unknown";
}

std::optional<Role> ParseRole(std::string_view text) {
  for (Role r : {Role::kCoordinator, Role::kRover, Role::kRelay, Role::kGuard}) {
    if (text == RoleName(r)) return r;
  }
  return std::nullopt;
}

std::string_view CrashKindName(CrashKind kind) {
  switch (kind) {
    case CrashKind::kCrash:
      return "crash";
    case CrashKind::kSleep:
      return "sleep";
  }
  return "unknown";
}

std::optional<CrashKind> ParseCrashKind(std::string_view text) {
  for (CrashKind k : {CrashKind::kCrash, CrashKind::kSleep}) {
    if (text == CrashKindName(k)) return k;
  }
  return std::nullopt;
}

namespace {

std::size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t above = row[j];
      const bool same = std::tolower(static_cast<unsigned char>(a[i - 1])) ==
                        std::tolower(static_cast<unsigned char>(b[j - 1]));
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (same ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

std::optional<std::string> SuggestClosest(std::string_view word, const std::vector<std::string>& candidates) {
  // Keys and names are short; a word far longer than any candidate is no typo of one (and the
  // bound keeps the quadratic distance cheap on hostile input).
  if (word.size() > 256) return std::nullopt;
  const std::size_t limit = std::max<std::size_t>(1, word.size() / 3);
  std::optional<std::string> best;
  std::size_t best_distance = limit + 1;
  for (const std::string& candidate : candidates) {
    const std::size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best_distance = d;
      best = candidate;
    }
  }
  return best;
}

namespace {

using coordinator::ResourceName;

// The parser reports the first error and stops. Internally an error unwinds as this exception
// (caught in ParseScenario, never crossing the interface), which keeps each validation step a
// single line instead of threading std::expected through a hundred of them.
struct Failure {
  ScenarioError error;
};

std::string Join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ", ";
    out += w;
  }
  return out;
}

std::string TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    case toml::node_type::string:
      return fmt::format("the string \"{}\"", n.as_string()->get());
    case toml::node_type::integer:
      return fmt::format("the integer {}", n.as_integer()->get());
    case toml::node_type::floating_point:
      return fmt::format("the number {}", n.as_floating_point()->get());
    case toml::node_type::boolean:
      return n.as_boolean()->get() ? "true" : "false";
    case toml::node_type::date:
    case toml::node_type::time:
    case toml::node_type::date_time:
      return "a date/time";
    case toml::node_type::none:
      break;
  }
  return "nothing";
}

std::string SecondsText(Duration d) {
  const auto ms = d.count();
  if (ms % 1000 == 0) return fmt::format("{}", ms / 1000);
  return fmt::format("{}.{:03}", ms / 1000, ms % 1000);
}

// How far past the scenario's end [[pass_schedule]] contacts continue by default.
constexpr Duration kPlanRunOn = std::chrono::hours(48);

constexpr std::string_view kDurationHelp =
    "a duration: a string such as \"90s\", \"10m\", \"1h30m\", \"14d\", \"250ms\", or an integer number of "
    "seconds";

class Parser {
 public:
  Parser(std::string_view text, std::string source) : text_(text), source_(std::move(source)) {}

  Scenario Run();

  [[noreturn]] void Fail(const toml::source_region& where, const std::string& key,
                         std::string message) const {
    throw Failure{ScenarioError{source_, static_cast<int>(where.begin.line),
                                static_cast<int>(where.begin.column), key, std::move(message)}};
  }
  [[noreturn]] void FailAt(const toml::node& n, const std::string& key, std::string message) const {
    Fail(n.source(), key, std::move(message));
  }

  // ---- Typed values: each names the key and shows what it got ----

  std::string String(const toml::node& n, const std::string& key) const {
    if (!n.is_string()) FailAt(n, key, fmt::format("expected a string, got {}", TypeName(n)));
    return n.as_string()->get();
  }
  std::int64_t Integer(const toml::node& n, const std::string& key) const {
    if (!n.is_integer()) FailAt(n, key, fmt::format("expected an integer, got {}", TypeName(n)));
    return n.as_integer()->get();
  }
  double Number(const toml::node& n, const std::string& key) const {
    if (n.is_integer()) return static_cast<double>(n.as_integer()->get());
    if (!n.is_floating_point()) FailAt(n, key, fmt::format("expected a number, got {}", TypeName(n)));
    const double v = n.as_floating_point()->get();
    if (!std::isfinite(v)) FailAt(n, key, "expected a finite number");
    return v;
  }
  bool Boolean(const toml::node& n, const std::string& key) const {
    if (!n.is_boolean()) FailAt(n, key, fmt::format("expected true or false, got {}", TypeName(n)));
    return n.as_boolean()->get();
  }
  double Probability(const toml::node& n, const std::string& key) const {
    const double p = Number(n, key);
    if (p < 0.0 || p > 1.0) FailAt(n, key, fmt::format("a probability must be in [0, 1] (got {})", p));
    return p;
  }
  int Count(const toml::node& n, const std::string& key, std::int64_t max) const {
    const std::int64_t v = Integer(n, key);
    if (v < 0 || v > max) FailAt(n, key, fmt::format("must be in [0, {}] (got {})", max, v));
    return static_cast<int>(v);
  }

  // A duration: "90s", "1h30m" (clock::ParseDuration) or an integer number of seconds.
  // allow_negative admits a leading '-' (clock steps go both ways).
  Duration DurationValue(const toml::node& n, const std::string& key, bool allow_negative = false) const {
    if (n.is_integer()) {
      const std::int64_t s = n.as_integer()->get();
      if (s < 0 && !allow_negative)
        FailAt(n, key, fmt::format("a duration must not be negative (got {})", s));
      const std::int64_t limit = kScenarioDurationMax.count() / 1000;
      if (s > limit || s < -limit) {
        FailAt(n, key, fmt::format("{} s is beyond the longest duration a scenario may use (100 years)", s));
      }
      return std::chrono::seconds(s);
    }
    if (!n.is_string()) FailAt(n, key, fmt::format("expected {}; got {}", kDurationHelp, TypeName(n)));
    std::string_view text = n.as_string()->get();
    bool negative = false;
    if (allow_negative && !text.empty() && text.front() == '-') {
      negative = true;
      text.remove_prefix(1);
    }
    auto d = clock::ParseDuration(text);
    if (!d) FailAt(n, key, fmt::format("{} (expected {})", d.error(), kDurationHelp));
    if (*d > kScenarioDurationMax) {
      FailAt(n, key, fmt::format("'{}' is beyond the longest duration a scenario may use (100 years)", text));
    }
    return negative ? -*d : *d;
  }
  Duration Positive(const toml::node& n, const std::string& key) const {
    const Duration d = DurationValue(n, key);
    if (d <= Duration(0)) FailAt(n, key, "must be longer than 0");
    return d;
  }

  DtnTime AbsoluteTime(const toml::node& n, const std::string& key) const {
    std::string text;
    if (n.is_string()) {
      text = n.as_string()->get();
    } else if (n.is_date_time() || n.is_date()) {
      text = DateTimeText(n);
    } else {
      FailAt(
          n, key,
          fmt::format("expected an ISO-8601 UTC time such as \"2027-02-01T00:00:00Z\", got {}", TypeName(n)));
    }
    auto t = DtnTime::ParseIso8601(text);
    if (!t) FailAt(n, key, t.error());
    return *t;
  }

  // A time within the scenario: an offset from `start` (a duration) or an absolute UTC time at
  // or after `start` (ISO-8601 text or a TOML date-time).
  Duration Offset(const toml::node& n, const std::string& key) const {
    if (n.is_date_time() || n.is_date()) return AbsoluteTime(n, key) - start_;
    if (n.is_string()) {
      std::string_view text = n.as_string()->get();
      if (!clock::ParseDuration(text) && text.size() > 1 &&
          text.find_first_of("-:", 1) != std::string_view::npos) {
        auto t = DtnTime::ParseIso8601(text);
        if (!t) {
          FailAt(n, key,
                 fmt::format("{} (expected an offset from start such as \"3d\" or an ISO-8601 UTC time)",
                             t.error()));
        }
        if (*t < start_) {
          FailAt(n, key, fmt::format("{} is before the scenario's start {}", text, start_.ToIso8601()));
        }
        return *t - start_;
      }
    }
    return DurationValue(n, key);
  }
  // An offset at which something happens: inside [0, duration).
  Duration Instant(const toml::node& n, const std::string& key) const {
    const Duration d = Offset(n, key);
    if (d >= duration_) {
      FailAt(n, key,
             fmt::format("{} is not within the scenario (duration {})", clock::FormatDuration(d),
                         clock::FormatDuration(duration_)));
    }
    return d;
  }
  // An offset at which something ends: inside (0, duration].
  Duration EndInstant(const toml::node& n, const std::string& key) const {
    const Duration d = Offset(n, key);
    if (d > duration_) {
      FailAt(n, key,
             fmt::format("{} is after the scenario's end (duration {})", clock::FormatDuration(d),
                         clock::FormatDuration(duration_)));
    }
    return d;
  }

  std::string Name(const toml::node& n, const std::string& key) const {
    std::string name = String(n, key);
    if (name.empty() || name.size() > kScenarioNameBytesMax) {
      FailAt(n, key, fmt::format("a name must have 1 to {} bytes", kScenarioNameBytesMax));
    }
    for (char c : name) {
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
        FailAt(n, key, fmt::format("name '{}': use letters, digits, '-', '_' and '.' only", name));
      }
    }
    return name;
  }

  ResourceName Resource(const toml::node& n, const std::string& key) const {
    auto r = coordinator::ParseResourceName(String(n, key));
    if (!r)
      FailAt(n, key, r.error() + " (a resource is named \"tenant/resource\", e.g. \"mars/charging-pad\")");
    return *r;
  }

  // A list of strings; a single string counts as a list of one.
  std::vector<std::pair<std::string, const toml::node*>> StringList(const toml::node& n,
                                                                    const std::string& key) const {
    std::vector<std::pair<std::string, const toml::node*>> out;
    if (n.is_string()) {
      out.emplace_back(n.as_string()->get(), &n);
      return out;
    }
    const toml::array* a = n.as_array();
    if (a == nullptr) FailAt(n, key, fmt::format("expected a list of strings, got {}", TypeName(n)));
    if (a->size() > kScenarioNodesMax * 4) FailAt(n, key, "too many entries");
    for (std::size_t i = 0; i < a->size(); ++i) {
      out.emplace_back(String(*a->get(i), fmt::format("{}[{}]", key, i)), a->get(i));
    }
    return out;
  }

  // A node named by another entry: it must exist and, when `role` is given, have that role.
  std::string NodeRef(const toml::node& n, const std::string& key,
                      std::optional<Role> role = std::nullopt) const {
    return CheckNodeRef(String(n, key), n, key, role);
  }
  std::string CheckNodeRef(const std::string& name, const toml::node& n, const std::string& key,
                           std::optional<Role> role) const {
    const NodeSpec* spec = scenario_.FindNode(name);
    if (spec == nullptr) {
      std::vector<std::string> names;
      for (const auto& s : scenario_.nodes) {
        if (!role || s.role == *role) names.push_back(s.name);
      }
      std::string hint;
      if (auto close = SuggestClosest(name, names)) hint = fmt::format("; did you mean '{}'?", *close);
      FailAt(n, key,
             fmt::format("unknown node '{}'{} (known{}: {})", name, hint,
                         role ? fmt::format(" {}s", RoleName(*role)) : std::string(), Join(names)));
    }
    if (role && spec->role != *role) {
      std::vector<std::string> names;
      for (const auto& s : scenario_.nodes) {
        if (s.role == *role) names.push_back(s.name);
      }
      FailAt(n, key,
             fmt::format("node '{}' is a {}, not a {} ({}s: {})", name, RoleName(spec->role), RoleName(*role),
                         RoleName(*role), names.empty() ? std::string("none") : Join(names)));
    }
    return name;
  }
  std::vector<std::string> NodeList(const toml::node& n, const std::string& key,
                                    std::optional<Role> role = std::nullopt, bool allow_empty = false) const {
    std::vector<std::string> out;
    std::set<std::string> seen;
    for (const auto& [name, item] : StringList(n, key)) {
      CheckNodeRef(name, *item, key, role);
      if (!seen.insert(name).second) FailAt(*item, key, fmt::format("node '{}' is listed twice", name));
      out.push_back(name);
    }
    if (out.empty() && !allow_empty) FailAt(n, key, "the list must not be empty");
    return out;
  }

 private:
  static std::string DateTimeText(const toml::node& n) {
    if (n.is_date()) {
      const auto& d = n.as_date()->get();
      return fmt::format("{:04}-{:02}-{:02}", d.year, d.month, d.day);
    }
    const auto& dt = n.as_date_time()->get();
    std::string text =
        fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}", dt.date.year, dt.date.month, dt.date.day,
                    dt.time.hour, dt.time.minute, dt.time.second, dt.time.nanosecond);
    if (dt.offset) {
      const int minutes = dt.offset->minutes;
      const int a = std::abs(minutes);
      text += fmt::format("{}{:02}:{:02}", minutes < 0 ? '-' : '+', a / 60, a % 60);
    }
    return text;
  }

  friend class Fields;
  void ReadTop(const toml::table& root);
  void ReadNodes(const toml::node& n);
  void ReadPlan(const toml::table& root);
  void ReadPassSchedules(const toml::node& n);
  void ReadRequests(const toml::node& n);
  void ReadWorkloads(const toml::node& n);
  void ReadPartitions(const toml::node& n);
  void ReadCrashes(const toml::node& n);
  void ReadLinkFaults(const toml::node& n);
  void ReadClockFaults(const toml::node& n);
  void ReadReplays(const toml::node& n);
  void ReadBulk(const toml::node& n);
  void ReadFuzz(const toml::node& n);
  void CheckPlan(std::string_view plan, const std::string& source, const toml::node* text_node,
                 const std::string& key);
  void CheckPlanNodes(std::string_view plan, const std::string& source, const toml::node* text_node,
                      const std::string& key) const;
  ScenarioError PlanErrorAt(const std::string& source, const toml::node* text_node, const std::string& key,
                            int plan_line, int plan_column, std::string message) const;

  // The tables of an array of tables `[[name]]`, each with its key path "name[i]".
  std::vector<std::pair<const toml::table*, std::string>> Tables(const toml::node& n,
                                                                 std::string_view name) const {
    const toml::array* a = n.as_array();
    if (a == nullptr || !a->is_array_of_tables()) {
      FailAt(
          n, std::string(name),
          fmt::format("expected an array of tables: write each entry as [[{}]] (got {})", name, TypeName(n)));
    }
    if (a->size() > kScenarioEntriesMax) {
      FailAt(n, std::string(name), fmt::format("at most {} [[{}]] entries", kScenarioEntriesMax, name));
    }
    std::vector<std::pair<const toml::table*, std::string>> out;
    for (std::size_t i = 0; i < a->size(); ++i)
      out.emplace_back(a->get(i)->as_table(), fmt::format("{}[{}]", name, i));
    return out;
  }

  std::string_view text_;
  std::string source_;
  Scenario scenario_;
  DtnTime start_;
  Duration duration_{0};
  std::string generated_plan_;  // contact lines made from [[pass_schedule]]
  std::size_t generated_contacts_ = 0;
};

// The keys of one table: refuses unknown ones (with a suggestion) on construction, then hands
// out values by key.
class Fields {
 public:
  Fields(const Parser& parser, const toml::table& table, std::string path, std::vector<std::string> allowed)
      : parser_(parser), table_(table), path_(std::move(path)) {
    for (auto&& [key, value] : table) {
      (void)value;
      const std::string k(key.str());
      if (std::ranges::find(allowed, k) != allowed.end()) continue;
      std::string message;
      if (auto close = SuggestClosest(k, allowed)) {
        message = fmt::format("unknown key '{}'; did you mean '{}'?", k, *close);
      } else {
        message = fmt::format("unknown key '{}' (valid here: {})", k, Join(allowed));
      }
      parser_.Fail(key.source(), Path(k), message);
    }
  }

  std::string Path(std::string_view key) const {
    return path_.empty() ? std::string(key) : fmt::format("{}.{}", path_, key);
  }
  const toml::node* Get(std::string_view key) const { return table_.get(key); }
  const toml::node& Need(std::string_view key, std::string_view help = {}) const {
    const toml::node* n = table_.get(key);
    if (n == nullptr) {
      std::string message = fmt::format("missing required key '{}'", key);
      if (!help.empty()) message += fmt::format(" ({})", help);
      if (path_.empty()) {
        throw Failure{ScenarioError{parser_.source_, 0, 0, std::string(key), message}};
      }
      parser_.Fail(table_.source(), Path(key), message);
    }
    return *n;
  }
  const toml::table& table() const { return table_; }

 private:
  const Parser& parser_;
  const toml::table& table_;
  std::string path_;
};

// ---- The top level ------------------------------------------------------------------------

Scenario Parser::Run() {
  if (text_.size() > kScenarioFileBytesMax) {
    throw Failure{ScenarioError{
        source_, 0, 0, "",
        fmt::format("the scenario is {} bytes; at most {} are read", text_.size(), kScenarioFileBytesMax)}};
  }
  toml::table root;
  try {
    root = toml::parse(text_, source_);
  } catch (const toml::parse_error& e) {
    throw Failure{ScenarioError{source_, static_cast<int>(e.source().begin.line),
                                static_cast<int>(e.source().begin.column), "",
                                fmt::format("TOML syntax: {}", e.description())}};
  }
  ReadTop(root);
  return std::move(scenario_);
}

void Parser::ReadTop(const toml::table& root) {
  Fields f(*this, root, "", {"format_version",
                             "name",
                             "description",
                             "claim",
                             "start",
                             "duration",
                             "processing_margin",
                             "light_time",
                             "plan",
                             "node",
                             "pass_schedule",
                             "request",
                             "workload",
                             "partition",
                             "crash",
                             "link_faults",
                             "clock_fault",
                             "replay",
                             "bulk",
                             "fuzz"});
  scenario_.source = source_;

  // The version first: a newer file may use keys this build does not know, and "unknown key"
  // would be the wrong diagnosis.
  const toml::node& version =
      f.Need("format_version", fmt::format("this build reads format_version = {}", kScenarioFormatVersion));
  const std::int64_t v = Integer(version, "format_version");
  if (v > kScenarioFormatVersion) {
    FailAt(version, "format_version",
           fmt::format("format_version {} is newer than this build reads (format_version {}): use a newer "
                       "ics-replay, or rewrite the file for version {} (scenarios/FORMAT.md)",
                       v, kScenarioFormatVersion, kScenarioFormatVersion));
  }
  if (v < 1)
    FailAt(version, "format_version", fmt::format("format_version must be {}", kScenarioFormatVersion));
  scenario_.format_version = static_cast<int>(v);

  scenario_.name = Name(f.Need("name"), "name");
  if (auto* n = f.Get("description")) scenario_.description = String(*n, "description");
  if (auto* n = f.Get("claim")) scenario_.claim = String(*n, "claim");
  start_ = AbsoluteTime(f.Need("start", "an ISO-8601 UTC time, e.g. \"2027-02-01T00:00:00Z\""), "start");
  scenario_.start = start_;
  duration_ = Positive(f.Need("duration", "e.g. \"30d\""), "duration");
  scenario_.duration = duration_;
  if (auto* n = f.Get("processing_margin"))
    scenario_.processing_margin = DurationValue(*n, "processing_margin");

  if (auto* n = f.Get("light_time")) {
    const toml::table* t = n->as_table();
    if (t == nullptr) FailAt(*n, "light_time", "expected a table: [light_time]");
    Fields lt(*this, *t, "light_time", {"orbital", "step"});
    if (auto* o = lt.Get("orbital")) scenario_.orbital_ranges = Boolean(*o, lt.Path("orbital"));
    if (auto* s = lt.Get("step")) scenario_.orbital_range_step = Positive(*s, lt.Path("step"));
  }

  ReadNodes(f.Need("node", "at least a [[node]] with role = \"coordinator\""));
  if (auto* n = f.Get("pass_schedule")) ReadPassSchedules(*n);
  ReadPlan(root);
  if (auto* n = f.Get("request")) ReadRequests(*n);
  if (auto* n = f.Get("workload")) ReadWorkloads(*n);
  if (auto* n = f.Get("partition")) ReadPartitions(*n);
  if (auto* n = f.Get("crash")) ReadCrashes(*n);
  if (auto* n = f.Get("link_faults")) ReadLinkFaults(*n);
  if (auto* n = f.Get("clock_fault")) ReadClockFaults(*n);
  if (auto* n = f.Get("replay")) ReadReplays(*n);
  if (auto* n = f.Get("bulk")) ReadBulk(*n);
  if (auto* n = f.Get("fuzz")) ReadFuzz(*n);
}

// ---- Nodes --------------------------------------------------------------------------------

void Parser::ReadNodes(const toml::node& n) {
  auto tables = Tables(n, "node");
  if (tables.size() > kScenarioNodesMax)
    FailAt(n, "node", fmt::format("at most {} nodes", kScenarioNodesMax));
  std::map<std::string, std::string> name_owner;  // name -> key path of its first use
  std::map<NodeNumber, std::string> id_owner;
  std::vector<std::pair<std::vector<std::pair<std::string, const toml::node*>>, std::string>> guard_refs;
  for (const auto& [table, path] : tables) {
    Fields f(*this, *table, path,
             {"name", "id", "role", "body", "drift_ppm", "skew", "actual_drift_ppm", "lease_term", "guards"});
    NodeSpec spec;
    const toml::node& name_node = f.Need("name");
    spec.name = Name(name_node, f.Path("name"));
    if (auto [it, fresh] = name_owner.emplace(spec.name, path); !fresh) {
      FailAt(name_node, f.Path("name"),
             fmt::format("node name '{}' is already used by {}", spec.name, it->second));
    }
    const toml::node& id_node = f.Need("id", "the node's ipn node number, > 0");
    const std::int64_t id = Integer(id_node, f.Path("id"));
    if (id <= 0) FailAt(id_node, f.Path("id"), fmt::format("an ipn node number must be > 0 (got {})", id));
    spec.id = static_cast<NodeNumber>(id);
    if (auto [it, fresh] = id_owner.emplace(spec.id, path); !fresh) {
      FailAt(id_node, f.Path("id"), fmt::format("node id {} is already used by {}", id, it->second));
    }
    const toml::node& role_node = f.Need("role", "coordinator, rover, relay or guard");
    const std::string role = String(role_node, f.Path("role"));
    auto parsed_role = ParseRole(role);
    if (!parsed_role) {
      FailAt(role_node, f.Path("role"),
             fmt::format("unknown role '{}' (valid: coordinator, rover, relay, guard)", role));
    }
    spec.role = *parsed_role;
    if (auto* b = f.Get("body")) {
      const std::string body = String(*b, f.Path("body"));
      spec.body = clock::ParseBody(body);
      if (!spec.body)
        FailAt(*b, f.Path("body"), fmt::format("unknown body '{}' (valid: earth, moon, mars)", body));
    } else if (scenario_.orbital_ranges) {
      f.Need("body", "light_time.orbital = true places every node on a body: earth, moon or mars");
    }
    if (auto* d = f.Get("drift_ppm")) {
      spec.clock.drift_ppm = Number(*d, f.Path("drift_ppm"));
      if (spec.clock.drift_ppm < 0 || spec.clock.drift_ppm > 10'000) {
        FailAt(*d, f.Path("drift_ppm"),
               fmt::format("a drift bound must be in [0, 10000] ppm (got {})", spec.clock.drift_ppm));
      }
    }
    if (auto* s = f.Get("skew")) spec.clock.skew = DurationValue(*s, f.Path("skew"));
    if (auto* a = f.Get("actual_drift_ppm")) {
      const double actual = Number(*a, f.Path("actual_drift_ppm"));
      if (std::abs(actual) > spec.clock.drift_ppm) {
        FailAt(*a, f.Path("actual_drift_ppm"),
               fmt::format("|{}| ppm exceeds the node's drift bound drift_ppm = {} (use a [[clock_fault]] to "
                           "break the bound on purpose)",
                           actual, spec.clock.drift_ppm));
      }
      spec.actual_drift_ppm = actual;
    }
    if (auto* l = f.Get("lease_term")) {
      if (spec.role != Role::kRover) FailAt(*l, f.Path("lease_term"), "only a rover asks for leases");
      spec.lease_term = Positive(*l, f.Path("lease_term"));
    }
    if (auto* g = f.Get("guards")) {
      if (spec.role != Role::kRover) FailAt(*g, f.Path("guards"), "only a rover presents tokens to guards");
      guard_refs.emplace_back(StringList(*g, f.Path("guards")), f.Path("guards"));
    } else {
      guard_refs.emplace_back();
    }
    scenario_.nodes.push_back(std::move(spec));
  }
  // Guards are checked once every node is known (a rover may name a guard declared after it).
  for (std::size_t i = 0; i < scenario_.nodes.size(); ++i) {
    for (const auto& [name, item] : guard_refs[i].first) {
      CheckNodeRef(name, *item, guard_refs[i].second, Role::kGuard);
      if (std::ranges::find(scenario_.nodes[i].guards, name) != scenario_.nodes[i].guards.end()) {
        FailAt(*item, guard_refs[i].second, fmt::format("guard '{}' is listed twice", name));
      }
      scenario_.nodes[i].guards.push_back(name);
    }
  }
  std::vector<std::string> coordinators;
  for (const auto& s : scenario_.nodes) {
    if (s.role == Role::kCoordinator) coordinators.push_back(s.name);
  }
  if (coordinators.size() != 1) {
    FailAt(n, "node",
           coordinators.empty()
               ? std::string("no node has role = \"coordinator\" (a scenario has exactly one)")
               : fmt::format("{} nodes have role = \"coordinator\" ({}); a scenario has exactly one",
                             coordinators.size(), Join(coordinators)));
  }
}

// ---- The contact plan -------------------------------------------------------------------

void Parser::ReadPassSchedules(const toml::node& n) {
  for (const auto& [table, path] : Tables(n, "pass_schedule")) {
    Fields f(*this, *table, path, {"relay", "nodes", "first", "every", "length", "rate", "owlt", "until"});
    const NodeSpec& relay = *scenario_.FindNode(NodeRef(f.Need("relay"), f.Path("relay")));
    const auto nodes = NodeList(f.Need("nodes"), f.Path("nodes"));
    for (std::size_t i = 0; i < nodes.size(); ++i) {
      if (nodes[i] == relay.name) FailAt(f.Need("nodes"), f.Path("nodes"), "a node cannot pass over itself");
    }
    const Duration first = f.Get("first") ? Instant(*f.Get("first"), f.Path("first")) : Duration(0);
    const Duration every = Positive(f.Need("every", "the pass period, e.g. \"2h\""), f.Path("every"));
    const toml::node& length_node = f.Need("length", "how long each pass lasts, e.g. \"10m\"");
    const Duration length = Positive(length_node, f.Path("length"));
    if (length > every) {
      FailAt(length_node, f.Path("length"),
             fmt::format("a pass ({}) cannot last longer than the period between passes ({})",
                         clock::FormatDuration(length), clock::FormatDuration(every)));
    }
    const toml::node& rate_node = f.Need("rate", "bytes per second");
    const std::int64_t rate = Integer(rate_node, f.Path("rate"));
    if (rate <= 0)
      FailAt(rate_node, f.Path("rate"), fmt::format("a rate must be > 0 bytes/s (got {})", rate));
    std::optional<Duration> owlt;
    if (auto* o = f.Get("owlt")) owlt = DurationValue(*o, f.Path("owlt"));
    // Plans run on past the scenario's end by default: the timeout policy looks ahead from
    // every instant (coordinator::PlanPolicyConfig::horizon, a day), and a plan that stops at the
    // end would look like "no route" to a node near it.
    const Duration until = f.Get("until") ? Offset(*f.Get("until"), f.Path("until")) : duration_ + kPlanRunOn;
    if (until <= first) Fail(table->source(), f.Path("until"), "the schedule ends before its first pass");
    const std::int64_t passes = (until - first + every - Duration(1)) / every;
    const std::uint64_t contacts = static_cast<std::uint64_t>(passes) * nodes.size() * 2;
    if (contacts + generated_contacts_ > kScenarioPassContactsMax) {
      Fail(table->source(), path,
           fmt::format("this schedule makes {} contacts; at most {} in all", contacts,
                       kScenarioPassContactsMax));
    }
    generated_contacts_ += contacts;
    generated_plan_ +=
        fmt::format("# {}: passes of {} every {}\n", path, relay.name, clock::FormatDuration(every));
    for (Duration s = first; s < until; s += every) {
      const std::string a = SecondsText(s), b = SecondsText(s + length);
      for (const std::string& name : nodes) {
        const NodeNumber id = scenario_.FindNode(name)->id;
        generated_plan_ += fmt::format("a contact +{} +{} {} {} {}\n", a, b, relay.id, id, rate);
        generated_plan_ += fmt::format("a contact +{} +{} {} {} {}\n", a, b, id, relay.id, rate);
        if (owlt)
          generated_plan_ +=
              fmt::format("a range +{} +{} {} {} {}\n", a, b, relay.id, id, SecondsText(*owlt));
      }
    }
  }
}

void Parser::ReadPlan(const toml::table& root) {
  std::string user_plan;
  std::string plan_source = source_ + ":plan";
  const toml::node* text_node = nullptr;
  std::string key;
  if (const toml::node* n = root.get("plan")) {
    const toml::table* t = n->as_table();
    if (t == nullptr) {
      FailAt(*n, "plan", "expected a table: [plan] with text = \"\"\"...\"\"\" or file = \"name.plan\"");
    }
    Fields f(*this, *t, "plan", {"text", "file"});
    if (f.Get("text") && f.Get("file")) {
      FailAt(*f.Get("file"), "plan.file", "give the plan either inline (text) or in a file (file), not both");
    }
    if (const toml::node* text = f.Get("text")) {
      user_plan = String(*text, "plan.text");
      text_node = text;
      key = "plan.text";
    } else if (const toml::node* file = f.Get("file")) {
      key = "plan.file";
      const std::string name = String(*file, key);
      std::filesystem::path path(name);
      if (path.is_relative()) path = std::filesystem::path(source_).parent_path() / path;
      std::error_code ec;
      const auto size = std::filesystem::file_size(path, ec);
      if (ec)
        FailAt(*file, key, fmt::format("cannot read the plan file {}: {}", path.string(), ec.message()));
      if (size > kScenarioPlanFileBytesMax) {
        FailAt(*file, key,
               fmt::format("the plan file {} is {} bytes; at most {} are read", path.string(), size,
                           kScenarioPlanFileBytesMax));
      }
      std::ifstream in(path, std::ios::binary);
      user_plan.resize(size);
      if (!in || !in.read(user_plan.data(), static_cast<std::streamsize>(size))) {
        FailAt(*file, key, fmt::format("cannot read the plan file {}", path.string()));
      }
      plan_source = path.string();
    }
  }
  if (!user_plan.empty()) CheckPlan(user_plan, plan_source, text_node, key);
  std::string plan = std::move(user_plan);
  if (!generated_plan_.empty()) {
    if (!plan.empty() && plan.back() != '\n') plan += '\n';
    plan += generated_plan_;
    // Made by ReadPassSchedules from validated values: an error here is a bug of this parser.
    auto parsed = dtn::ParseContactPlan(plan, plan_source, start_);
    if (!parsed) {
      throw Failure{
          ScenarioError{source_, 0, 0, "pass_schedule",
                        "internal error: the generated plan does not parse: " + parsed.error().ToString()}};
    }
  }
  scenario_.plan_text = std::move(plan);
  scenario_.plan_source = plan_source;
}

// Maps a line/column of the plan text to the scenario file when the plan is inline.
ScenarioError Parser::PlanErrorAt(const std::string& source, const toml::node* text_node,
                                  const std::string& key, int plan_line, int plan_column,
                                  std::string message) const {
  if (text_node == nullptr) return ScenarioError{source, plan_line, plan_column, key, std::move(message)};
  if (plan_line <= 0) {  // about the whole plan (e.g. too many lines): point at the value
    return ScenarioError{source_, static_cast<int>(text_node->source().begin.line),
                         static_cast<int>(text_node->source().begin.column), key, std::move(message)};
  }
  // toml++ places a string value at its opening quote. Find whether it is a multi-line string
  // ("""/''') and whether its text starts on the next line (TOML trims a newline right after
  // the opening delimiter). The text's lines are then the file's lines, verbatim, as long as the
  // plan has no escapes or line-ending backslashes (FORMAT.md says to use plain lines).
  const int value_line = static_cast<int>(text_node->source().begin.line);
  const int value_column = static_cast<int>(text_node->source().begin.column);
  std::size_t offset = 0;
  for (int l = 1; l < value_line && offset != std::string_view::npos; ++l) {
    offset = text_.find('\n', offset);
    if (offset != std::string_view::npos) ++offset;
  }
  std::size_t delimiter = 1;
  bool starts_next_line = false;
  if (offset != std::string_view::npos) {
    const std::size_t at = offset + static_cast<std::size_t>(value_column - 1);
    const std::string_view rest = at < text_.size() ? text_.substr(at) : std::string_view();
    if (rest.starts_with("\"\"\"") || rest.starts_with("'''")) {
      delimiter = 3;
      const std::string_view after = rest.substr(3);
      starts_next_line = after.starts_with("\n") || after.starts_with("\r\n");
    }
  }
  int line = 0, column = 0;
  if (starts_next_line) {
    line = value_line + plan_line;
    column = plan_column;
  } else {
    line = value_line + plan_line - 1;
    column = plan_line == 1 ? value_column + static_cast<int>(delimiter) + plan_column - 1 : plan_column;
  }
  return ScenarioError{source_, line, column, key, std::move(message)};
}

void Parser::CheckPlan(std::string_view plan, const std::string& source, const toml::node* text_node,
                       const std::string& key) {
  auto parsed = dtn::ParseContactPlan(plan, source, start_);
  if (!parsed) {
    const dtn::PlanError& e = parsed.error();
    throw Failure{PlanErrorAt(source, text_node, key, e.line, e.column, "contact plan: " + e.message)};
  }
  CheckPlanNodes(plan, source, text_node, key);
}

// Every node number a plan line names must be a [[node]]'s id: a typo there would leave a node
// silently unreachable. The plan has parsed, so every `a` line has its FROM and TO as tokens 5
// and 6.
void Parser::CheckPlanNodes(std::string_view plan, const std::string& source, const toml::node* text_node,
                            const std::string& key) const {
  int line_number = 0;
  std::size_t pos = 0;
  while (pos <= plan.size()) {
    std::size_t end = plan.find('\n', pos);
    if (end == std::string_view::npos) end = plan.size();
    const std::string_view line = plan.substr(pos, end - pos);
    ++line_number;
    std::size_t i = 0;
    int token = 0;
    while (i < line.size() && token < 6) {
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      if (i >= line.size() || line[i] == '#') break;
      const std::size_t begin = i;
      while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') ++i;
      ++token;
      if (token < 5) continue;
      const std::string_view word = line.substr(begin, i - begin);
      NodeNumber id = 0;
      std::from_chars(word.data(), word.data() + word.size(), id);
      if (scenario_.FindNode(id) == nullptr) {
        std::vector<std::string> known;
        for (const auto& s : scenario_.nodes) known.push_back(fmt::format("{} {}", s.id, s.name));
        throw Failure{PlanErrorAt(
            source, text_node, key, line_number, static_cast<int>(begin) + 1,
            fmt::format("contact plan: node {} is not a [[node]]'s id (known: {})", word, Join(known)))};
      }
    }
    pos = end + 1;
  }
}

// ---- Workload -----------------------------------------------------------------------------

void Parser::ReadRequests(const toml::node& n) {
  for (const auto& [table, path] : Tables(n, "request")) {
    Fields f(*this, *table, path, {"rover", "resource", "at", "hold", "wait", "use_every"});
    Request r;
    r.rover = NodeRef(f.Need("rover"), f.Path("rover"), Role::kRover);
    r.resource = Resource(f.Need("resource"), f.Path("resource"));
    r.at = Instant(f.Need("at", "when the rover asks, e.g. \"1h\""), f.Path("at"));
    r.hold = Positive(f.Need("hold", "how long the rover wants the resource"), f.Path("hold"));
    r.wait =
        Positive(f.Need("wait", "how long the rover waits for a grant before giving up"), f.Path("wait"));
    if (auto* u = f.Get("use_every")) {
      r.use_every = DurationValue(*u, f.Path("use_every"));
      if (r.use_every > Duration(0) && scenario_.FindNode(r.rover)->guards.empty()) {
        FailAt(*u, f.Path("use_every"),
               fmt::format("rover '{}' names no guard (its `guards`), so it has nowhere to use the resource",
                           r.rover));
      }
    }
    scenario_.requests.push_back(std::move(r));
  }
}

void Parser::ReadWorkloads(const toml::node& n) {
  std::uint64_t index = 0;
  for (const auto& [table, path] : Tables(n, "workload")) {
    Fields f(*this, *table, path,
             {"rovers", "resources", "mean_interarrival", "hold", "wait", "from", "until", "use_every",
              "seed_salt"});
    RandomWorkload w;
    w.rovers = NodeList(f.Need("rovers"), f.Path("rovers"), Role::kRover);
    for (const auto& [name, item] : StringList(f.Need("resources"), f.Path("resources"))) {
      w.resources.push_back(Resource(*item, f.Path("resources")));
    }
    if (w.resources.empty()) FailAt(f.Need("resources"), f.Path("resources"), "the list must not be empty");
    w.mean_interarrival =
        Positive(f.Need("mean_interarrival", "the mean time between requests of each rover"),
                 f.Path("mean_interarrival"));
    const toml::node& hold = f.Need("hold", "a duration or [min, max]");
    if (const toml::array* a = hold.as_array()) {
      if (a->size() != 2)
        FailAt(hold, f.Path("hold"), "expected a duration or a [min, max] pair of durations");
      w.hold_min = Positive(*a->get(0), f.Path("hold") + "[0]");
      w.hold_max = Positive(*a->get(1), f.Path("hold") + "[1]");
      if (w.hold_max < w.hold_min) FailAt(hold, f.Path("hold"), "[min, max]: max is shorter than min");
    } else {
      w.hold_min = w.hold_max = Positive(hold, f.Path("hold"));
    }
    w.wait = Positive(f.Need("wait", "how long each request waits for a grant"), f.Path("wait"));
    w.from = f.Get("from") ? Instant(*f.Get("from"), f.Path("from")) : Duration(0);
    w.until = f.Get("until") ? EndInstant(*f.Get("until"), f.Path("until")) : duration_;
    if (w.until <= w.from) Fail(table->source(), f.Path("until"), "the workload ends before it starts");
    if (auto* u = f.Get("use_every")) {
      w.use_every = DurationValue(*u, f.Path("use_every"));
      for (const auto& rover : w.rovers) {
        if (w.use_every > Duration(0) && scenario_.FindNode(rover)->guards.empty()) {
          FailAt(
              *u, f.Path("use_every"),
              fmt::format("rover '{}' names no guard (its `guards`), so it has nowhere to use the resource",
                          rover));
        }
      }
    }
    w.seed_salt = index;
    if (auto* s = f.Get("seed_salt")) {
      const std::int64_t salt = Integer(*s, f.Path("seed_salt"));
      if (salt < 0) FailAt(*s, f.Path("seed_salt"), "must be >= 0");
      w.seed_salt = static_cast<std::uint64_t>(salt);
    }
    ++index;
    scenario_.random_workloads.push_back(std::move(w));
  }
}

// ---- Faults -------------------------------------------------------------------------------

void Parser::ReadPartitions(const toml::node& n) {
  for (const auto& [table, path] : Tables(n, "partition")) {
    Fields f(*this, *table, path, {"a", "b", "from", "until"});
    Partition p;
    p.side_a = NodeList(f.Need("a", "the nodes on one side"), f.Path("a"));
    p.side_b = NodeList(f.Need("b", "the nodes on the other side"), f.Path("b"));
    for (const auto& name : p.side_b) {
      if (std::ranges::find(p.side_a, name) != p.side_a.end()) {
        FailAt(f.Need("b"), f.Path("b"), fmt::format("node '{}' is on both sides", name));
      }
    }
    p.from = Instant(f.Need("from"), f.Path("from"));
    p.until = EndInstant(f.Need("until"), f.Path("until"));
    if (p.until <= p.from) FailAt(f.Need("until"), f.Path("until"), "the partition ends before it starts");
    scenario_.partitions.push_back(std::move(p));
  }
}

void Parser::ReadCrashes(const toml::node& n) {
  for (const auto& [table, path] : Tables(n, "crash")) {
    Fields f(*this, *table, path, {"node", "kind", "at", "down_for"});
    Crash c;
    c.node = NodeRef(f.Need("node"), f.Path("node"));
    if (auto* k = f.Get("kind")) {
      const std::string kind = String(*k, f.Path("kind"));
      auto parsed = ParseCrashKind(kind);
      if (!parsed) FailAt(*k, f.Path("kind"), fmt::format("unknown kind '{}' (valid: crash, sleep)", kind));
      c.kind = *parsed;
    }
    c.at = Instant(f.Need("at"), f.Path("at"));
    c.down_for = Positive(f.Need("down_for", "how long the node stays down"), f.Path("down_for"));
    for (const Crash& other : scenario_.crashes) {
      if (other.node == c.node && c.at < other.at + other.down_for && other.at < c.at + c.down_for) {
        FailAt(f.Need("at"), f.Path("at"),
               fmt::format("node '{}' is already down then (another [[crash]] at {} for {})", c.node,
                           clock::FormatDuration(other.at), clock::FormatDuration(other.down_for)));
      }
    }
    scenario_.crashes.push_back(std::move(c));
  }
}

void Parser::ReadLinkFaults(const toml::node& n) {
  for (const auto& [table, path] : Tables(n, "link_faults")) {
    Fields f(*this, *table, path, {"nodes", "loss", "duplication", "reorder", "reorder_delay_max"});
    LinkFaults l;
    if (auto* x = f.Get("nodes")) l.nodes = NodeList(*x, f.Path("nodes"), std::nullopt, /*allow_empty=*/true);
    if (auto* x = f.Get("loss")) l.loss = Probability(*x, f.Path("loss"));
    if (auto* x = f.Get("duplication")) l.duplication = Probability(*x, f.Path("duplication"));
    if (auto* x = f.Get("reorder")) l.reorder = Probability(*x, f.Path("reorder"));
    if (auto* x = f.Get("reorder_delay_max"))
      l.reorder_delay_max = DurationValue(*x, f.Path("reorder_delay_max"));
    if (l.reorder > 0 && l.reorder_delay_max <= Duration(0)) {
      f.Need("reorder_delay_max", "reorder > 0 delays bundles by up to this much");
      FailAt(*f.Get("reorder_delay_max"), f.Path("reorder_delay_max"),
             "must be longer than 0 when reorder > 0");
    }
    scenario_.link_faults.push_back(std::move(l));
  }
}

void Parser::ReadClockFaults(const toml::node& n) {
  for (const auto& [table, path] : Tables(n, "clock_fault")) {
    Fields f(*this, *table, path, {"node", "at", "drift_ppm", "step"});
    ClockFault c;
    c.node = NodeRef(f.Need("node"), f.Path("node"));
    c.at = Instant(f.Need("at"), f.Path("at"));
    if (auto* d = f.Get("drift_ppm")) {
      c.drift_ppm = Number(*d, f.Path("drift_ppm"));
      if (std::abs(*c.drift_ppm) > 100'000) FailAt(*d, f.Path("drift_ppm"), "must be within +/-100000 ppm");
    }
    if (auto* s = f.Get("step")) c.step = DurationValue(*s, f.Path("step"), /*allow_negative=*/true);
    if (!c.drift_ppm && c.step == Duration(0)) {
      Fail(table->source(), path,
           "a clock fault needs drift_ppm (a new drift) or step (a jump, e.g. \"2s\" or \"-2s\")");
    }
    scenario_.clock_faults.push_back(std::move(c));
  }
}

void Parser::ReadReplays(const toml::node& n) {
  for (const auto& [table, path] : Tables(n, "replay")) {
    Fields f(*this, *table, path, {"from_node", "capture_from", "capture_until", "replay_at"});
    Replay r;
    r.from_node = NodeRef(f.Need("from_node"), f.Path("from_node"));
    r.capture_from = Instant(f.Need("capture_from"), f.Path("capture_from"));
    r.capture_until = EndInstant(f.Need("capture_until"), f.Path("capture_until"));
    if (r.capture_until <= r.capture_from) {
      FailAt(f.Need("capture_until"), f.Path("capture_until"), "the capture ends before it starts");
    }
    r.replay_at = Instant(f.Need("replay_at"), f.Path("replay_at"));
    if (r.replay_at < r.capture_until) {
      FailAt(f.Need("replay_at"), f.Path("replay_at"),
             fmt::format("messages can be replayed only after they are captured (capture_until = {})",
                         clock::FormatDuration(r.capture_until)));
    }
    scenario_.replays.push_back(std::move(r));
  }
}

void Parser::ReadBulk(const toml::node& n) {
  for (const auto& [table, path] : Tables(n, "bulk")) {
    Fields f(*this, *table, path, {"node", "to", "size", "at", "every", "count"});
    BulkTransfer b;
    b.node = NodeRef(f.Need("node", "the sender"), f.Path("node"));
    b.to = NodeRef(f.Need("to", "the receiver"), f.Path("to"));
    if (b.to == b.node) FailAt(f.Need("to"), f.Path("to"), "a node does not send bulk data to itself");
    const toml::node& size = f.Need("size", "bytes per transfer");
    const std::int64_t bytes = Integer(size, f.Path("size"));
    constexpr std::int64_t kBulkBytesMax = std::int64_t{1} << 40;
    if (bytes <= 0 || bytes > kBulkBytesMax) {
      FailAt(size, f.Path("size"), fmt::format("must be in [1, {}] bytes (got {})", kBulkBytesMax, bytes));
    }
    b.size_bytes = static_cast<std::uint64_t>(bytes);
    b.at = f.Get("at") ? Instant(*f.Get("at"), f.Path("at")) : Duration(0);
    if (auto* c = f.Get("count")) {
      b.count = Count(*c, f.Path("count"), 1'000'000);
      if (b.count == 0) FailAt(*c, f.Path("count"), "must be >= 1");
    }
    if (b.count > 1) {
      b.every = Positive(f.Need("every", "count > 1 needs the period between transfers"), f.Path("every"));
      if (b.at + b.every * (b.count - 1) >= duration_) {
        FailAt(f.Need("count"), f.Path("count"),
               fmt::format("the last transfer (at {}) is not within the scenario (duration {})",
                           clock::FormatDuration(b.at + b.every * (b.count - 1)),
                           clock::FormatDuration(duration_)));
      }
    } else if (auto* e = f.Get("every")) {
      b.every = DurationValue(*e, f.Path("every"));
    }
    scenario_.bulk.push_back(std::move(b));
  }
}

void Parser::ReadFuzz(const toml::node& n) {
  const toml::table* t = n.as_table();
  if (t == nullptr) FailAt(n, "fuzz", "expected a table: [fuzz]");
  Fields f(*this, *t, "fuzz",
           {"loss_max", "duplication_max", "reorder_max", "reorder_delay_max", "partitions_max",
            "partition_length_max", "crashes_max", "down_for_max", "drift_ppm_max"});
  FuzzBounds& b = scenario_.fuzz;
  if (auto* x = f.Get("loss_max")) b.loss_max = Probability(*x, f.Path("loss_max"));
  if (auto* x = f.Get("duplication_max")) b.duplication_max = Probability(*x, f.Path("duplication_max"));
  if (auto* x = f.Get("reorder_max")) b.reorder_max = Probability(*x, f.Path("reorder_max"));
  if (auto* x = f.Get("reorder_delay_max"))
    b.reorder_delay_max = DurationValue(*x, f.Path("reorder_delay_max"));
  if (auto* x = f.Get("partitions_max")) b.partitions_max = Count(*x, f.Path("partitions_max"), 1000);
  if (auto* x = f.Get("partition_length_max")) {
    b.partition_length_max = DurationValue(*x, f.Path("partition_length_max"));
  }
  if (auto* x = f.Get("crashes_max")) b.crashes_max = Count(*x, f.Path("crashes_max"), 1000);
  if (auto* x = f.Get("down_for_max")) b.down_for_max = DurationValue(*x, f.Path("down_for_max"));
  if (auto* x = f.Get("drift_ppm_max")) {
    b.drift_ppm_max = Number(*x, f.Path("drift_ppm_max"));
    if (b.drift_ppm_max < 0 || b.drift_ppm_max > 10'000) {
      FailAt(*x, f.Path("drift_ppm_max"), "must be in [0, 10000] ppm");
    }
  }
  if (b.reorder_max > 0 && b.reorder_delay_max <= Duration(0)) {
    Fail(t->source(), "fuzz.reorder_delay_max", "must be longer than 0 when reorder_max > 0");
  }
  if (b.partitions_max > 0 && b.partition_length_max <= Duration(0)) {
    Fail(t->source(), "fuzz.partition_length_max", "must be longer than 0 when partitions_max > 0");
  }
  if (b.crashes_max > 0 && b.down_for_max <= Duration(0)) {
    Fail(t->source(), "fuzz.down_for_max", "must be longer than 0 when crashes_max > 0");
  }
}

}  // namespace

std::expected<Scenario, ScenarioError> ParseScenario(std::string_view text, std::string_view source_name) {
  try {
    Parser parser(text, std::string(source_name));
    return parser.Run();
  } catch (const Failure& failure) {
    return std::unexpected(failure.error);
  } catch (const std::bad_alloc&) {
    return std::unexpected(ScenarioError{std::string(source_name), 0, 0, "", "out of memory while parsing"});
  }
}

std::expected<Scenario, ScenarioError> LoadScenarioFile(const std::filesystem::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) return std::unexpected(ScenarioError{name, 0, 0, "", "cannot open: " + ec.message()});
  if (size > kScenarioFileBytesMax) {
    return std::unexpected(
        ScenarioError{name, 0, 0, "",
                      fmt::format("the file is {} bytes; at most {} are read", size, kScenarioFileBytesMax)});
  }
  std::ifstream in(path, std::ios::binary);
  std::string text(size, '\0');
  if (!in || !in.read(text.data(), static_cast<std::streamsize>(size))) {
    return std::unexpected(ScenarioError{name, 0, 0, "", "cannot read the file"});
  }
  return ParseScenario(text, name);
}

}  // namespace ics::scenarios
