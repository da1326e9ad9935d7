// ics-dtn-bench: benchmarks of the bundle layer, one subcommand per file, registered like the
// ics-dtn verbs: `static const ics::dtn::bench::Registration kReg{"node", "summary", RunNodeBench};`
// Each prints a human-readable report on stdout and returns the process exit status.
#pragma once

#include <string_view>

namespace ics::dtn::bench {

// argv[0] is the subcommand name.
using BenchFn = int (*)(int argc, char** argv);

struct Registration {
  Registration(std::string_view name, std::string_view summary, BenchFn run);
};

}  // namespace ics::dtn::bench
