// ics-dtn-bench: main() only dispatches to a registered benchmark.
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "bench.h"

namespace ics::dtn::bench {
namespace {

struct Entry {
  std::string summary;
  BenchFn run;
};

std::map<std::string, Entry, std::less<>>& Benchmarks() {
  static std::map<std::string, Entry, std::less<>> benchmarks;
  return benchmarks;
}

void Usage(std::FILE* out) {
  std::fprintf(
      out, "usage: ics-dtn-bench BENCHMARK [options]   (ics-dtn-bench BENCHMARK --help)\n\nbenchmarks:\n");
  for (const auto& [name, entry] : Benchmarks())
    std::fprintf(out, "  %-8s %s\n", name.c_str(), entry.summary.c_str());
}

}  // namespace

Registration::Registration(std::string_view name, std::string_view summary, BenchFn run) {
  Benchmarks().emplace(std::string(name), Entry{std::string(summary), run});
}

}  // namespace ics::dtn::bench

int main(int argc, char** argv) {
  using ics::dtn::bench::Benchmarks;
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    ics::dtn::bench::Usage(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  auto it = Benchmarks().find(argv[1]);
  if (it == Benchmarks().end()) {
    std::fprintf(stderr, "ics-dtn-bench: unknown benchmark '%s'\n", argv[1]);
    ics::dtn::bench::Usage(stderr);
    return 2;
  }
  return it->second.run(argc - 1, argv + 1);
}
