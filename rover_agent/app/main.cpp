// ics-rover-agent: the rover agent daemon (`run`), its control client (`acquire`, `release`,
// `status`, `use`) and the resource guard daemon (`guard`). main() only dispatches; the agent
// daemon is in agent_daemon.cpp, the client in control_client.cpp, the guard in guard_daemon.cpp.
#include <cstdio>
#include <cstring>

namespace ics::rover_agent::app {
int RunDaemon(int argc, char** argv);
int RunClient(int argc, char** argv);  // acquire / release / status / use
int RunGuard(int argc, char** argv);
}  // namespace ics::rover_agent::app

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::fprintf(argc < 2 ? stderr : stdout,
                 "usage: ics-rover-agent COMMAND [options]   (COMMAND --help for its options)\n\n"
                 "commands:\n"
                 "  run      run the agent daemon (embeds a bundle node; persists in --data)\n"
                 "  acquire  TENANT/RESOURCE --for DURATION [--wait] [--deadline DURATION] --via CONTROL\n"
                 "  release  TENANT/RESOURCE --via CONTROL\n"
                 "  status   --via CONTROL\n"
                 "  use      TENANT/RESOURCE --guard ipn:G --operation TEXT --via CONTROL\n"
                 "  guard    run a resource guard daemon (--resource TENANT/RESOURCE ...; --data)\n"
                 "every client verb takes --json (one JSON object on stdout)\n");
    return argc < 2 ? 2 : 0;
  }
  if (std::strcmp(argv[1], "run") == 0) return ics::rover_agent::app::RunDaemon(argc - 1, argv + 1);
  if (std::strcmp(argv[1], "acquire") == 0 || std::strcmp(argv[1], "release") == 0 ||
      std::strcmp(argv[1], "status") == 0 || std::strcmp(argv[1], "use") == 0) {
    return ics::rover_agent::app::RunClient(argc - 1, argv + 1);
  }
  if (std::strcmp(argv[1], "guard") == 0) return ics::rover_agent::app::RunGuard(argc - 1, argv + 1);
  std::fprintf(stderr, "ics-rover-agent: unknown command '%s' (try --help)\n", argv[1]);
  return 2;
}
