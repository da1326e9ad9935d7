// The replay's timeline picture (private to the library).
#pragma once

#include <string>

#include "dtn/contact_plan.h"
#include "scenarios/replay.h"

namespace ics::scenarios {

// Per resource: who believed it held it when (true time; one bar per belief, labelled with the
// rover and token; the bar ends where the holder's own view or its release ended it), the
// coordinator's epochs as vertical lines, a lane of faults (partitions, crashes) and one lane of
// contacts per link.
std::string RenderTimeline(const Scenario& scenario, const ReplayResult& result, const dtn::ContactPlan& plan,
                           clock::DtnTime end);

}  // namespace ics::scenarios
