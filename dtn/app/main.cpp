// ics-dtn: the bundle layer's command-line tool. main() only dispatches to a subcommand.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "command.h"

namespace ics::dtn::app {
namespace {

struct Entry {
  std::string summary;
  CommandFn run;
};

std::map<std::string, Entry, std::less<>>& Commands() {
  static std::map<std::string, Entry, std::less<>> commands;
  return commands;
}

void Usage(std::FILE* out) {
  std::fprintf(out, "usage: ics-dtn COMMAND [options]   (ics-dtn COMMAND --help for its options)\n\ncommands:\n");
  for (const auto& [name, entry] : Commands()) {
    std::fprintf(out, "  %-8s %s\n", name.c_str(), entry.summary.c_str());
  }
}

}  // namespace

Registration::Registration(std::string_view name, std::string_view summary, CommandFn run) {
  Commands().emplace(std::string(name), Entry{std::string(summary), run});
}

}  // namespace ics::dtn::app

int main(int argc, char** argv) {
  using ics::dtn::app::Commands;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    ics::dtn::app::Usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  auto it = Commands().find(argv[1]);
  if (it == Commands().end()) {
    std::fprintf(stderr, "ics-dtn: unknown command '%s'\n", argv[1]);
    ics::dtn::app::Usage(stderr);
    return 2;
  }
  return it->second.run(argc - 1, argv + 1);
}
