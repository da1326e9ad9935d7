// Helpers shared by the clock tests: seeded randomness that reports its seed, and a death check
// that runs a callable in a forked child and expects it to abort with a message.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>

namespace ics::clock::testing {

// The seed comes from ICS_SEED when set (to reproduce a failure), else from the clock.
inline std::uint64_t TestSeed() {
  if (const char* env = std::getenv("ICS_SEED")) return std::strtoull(env, nullptr, 10);
  return std::random_device{}();
}

// Runs `fn` in a child process; returns what it wrote to stderr if it died of SIGABRT, or a
// string starting with "DID NOT ABORT" otherwise.
template <typename Fn>
std::string AbortMessage(Fn fn) {
  int fds[2];
  REQUIRE(pipe(fds) == 0);
  std::fflush(nullptr);
  const pid_t pid = fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    // doctest's own SIGABRT handler would report a crash from the child: restore the default.
    std::signal(SIGABRT, SIG_DFL);
    dup2(fds[1], STDERR_FILENO);
    close(fds[0]);
    fn();
    _exit(0);
  }
  close(fds[1]);
  std::string out;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0) out.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT) return "DID NOT ABORT: " + out;
  return out;
}

}  // namespace ics::clock::testing
