// The ics-dtn subcommands. Each lives in its own file and registers itself here, so a new verb
// is one new file: `static const Registration kReg{"decode", "bundle bytes in, JSON out", RunDecode};`
#pragma once

#include <functional>
#include <string_view>

namespace ics::dtn::app {

// argv[0] is the subcommand name; returns the process exit status.
using CommandFn = int (*)(int argc, char** argv);

struct Registration {
  Registration(std::string_view name, std::string_view summary, CommandFn run);
};

}  // namespace ics::dtn::app
