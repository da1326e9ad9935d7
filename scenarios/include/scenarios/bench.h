// The replay benchmark's scenario: a scenario stretched in time and widened in rovers, e.g. the
// Mars scenario over one Martian year (687 days) with 12 rovers (`ics-replay bench`).
#pragma once

#include <expected>
#include <string>

#include "scenarios/scenario.h"

namespace ics::scenarios {

// Repeats the scenario's contact plan, ranges, requests, partitions and crashes every
// scenario.duration until `duration`, and adds clones of its rovers (names "<rover>-cN", fresh
// node numbers above the highest, the template's contacts, ranges, requests and partition
// sides) until there are `rovers` rovers. Random workloads are extended to the new duration and
// their rover lists include the clones. Error when the scenario has no rover or a plan that does
// not parse.
std::expected<Scenario, std::string> StretchScenario(const Scenario& scenario, int rovers, Duration duration);

}  // namespace ics::scenarios
