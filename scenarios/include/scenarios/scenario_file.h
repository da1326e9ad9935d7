// Scenario files: TOML, format version 1, fully described in scenarios/FORMAT.md. The parser
// reads a file into the scenario model (scenario.h) and validates all of it, so the replayer can
// trust what it gets: exactly one coordinator, unique node names and ids, known roles, bodies and
// crash kinds, parseable resource names, a contact plan that parses and names only known nodes,
// requests from rovers, guards that are guards, probabilities in [0, 1], times inside the
// scenario. Unknown keys are errors (a typo must not silently change a scenario).
//
// Errors name the file, line, column and key, and suggest what was meant:
//   scenarios/library/mars.toml:12:8: node[2].role: unknown role 'rovr' (valid: coordinator, rover, relay,
//   guard) x.toml:7:1: node[0].drift_pmm: unknown key 'drift_pmm'; did you mean 'drift_ppm'?
// Parsing stops at the first error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scenarios/scenario.h"

namespace ics::scenarios {

// The format version this build reads. A file with a higher `format_version` is refused with an
// error saying so; the version goes up only when a change would make an old reader misread a
// new file (FORMAT.md, "Versions").
inline constexpr int kScenarioFormatVersion = 1;

// Bounds on untrusted input.
inline constexpr std::uintmax_t kScenarioFileBytesMax = 4u << 20;       // 4 MiB: the scenario text
inline constexpr std::uintmax_t kScenarioPlanFileBytesMax = 64u << 20;  // a `[plan] file`
inline constexpr std::size_t kScenarioNodesMax = 4096;
inline constexpr std::size_t kScenarioEntriesMax = 100'000;         // per array of tables, e.g. [[request]]
inline constexpr std::size_t kScenarioNameBytesMax = 64;            // node and scenario names
inline constexpr std::size_t kScenarioPassContactsMax = 1'000'000;  // contacts made by [[passes]]
inline constexpr Duration kScenarioDurationMax = std::chrono::hours(24 * 366 * 100);  // 100 years

// Where and what. line and column are 1-based; line 0 when the error concerns the whole file
// (unreadable, too large, a required top-level key missing). key is the path of the offending
// key in the file, `node[2].role` (array indices 0-based, in file order), empty when none.
struct ScenarioError {
  std::string file;
  int line = 0;
  int column = 0;
  std::string key;
  std::string message;
  // "file:line:column: key: message"; the line/column part and the key part are left out when
  // unknown / empty: "file: cannot open: No such file or directory".
  std::string ToString() const;
};

// Parses and validates a scenario. source_name names the text in errors and in
// Scenario::source; a `[plan] file` is read relative to source_name's directory (so pass the
// file's path when the text came from a file). REQUIRES nothing: any text is accepted as input,
// texts longer than kScenarioFileBytesMax are refused.
std::expected<Scenario, ScenarioError> ParseScenario(std::string_view text, std::string_view source_name);

// Reads (at most kScenarioFileBytesMax bytes) and parses a scenario file.
std::expected<Scenario, ScenarioError> LoadScenarioFile(const std::filesystem::path& path);

// The words the file uses: "coordinator", "rover", "relay", "guard"; "crash", "sleep".
std::string_view RoleName(Role role);
std::optional<Role> ParseRole(std::string_view text);
std::string_view CrashKindName(CrashKind kind);
std::optional<CrashKind> ParseCrashKind(std::string_view text);

// The closest of `candidates` to `word` by edit distance (Levenshtein, case-insensitive) when it
// is close enough to be a plausible typo (distance <= max(1, len/3)); nullopt otherwise. Used for
// "did you mean" suggestions; exposed for tests and the CLI.
std::optional<std::string> SuggestClosest(std::string_view word, const std::vector<std::string>& candidates);

}  // namespace ics::scenarios
