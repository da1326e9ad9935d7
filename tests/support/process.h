// A small harness for multi-process tests: spawn real executables, signal them, wait for them
// with bounded timeouts, follow their log files line by line, pick free TCP ports, make temp dirs.
//
// Contract. Every wait is bounded by a caller-given timeout and polls in small steps (the only
// sleeps are those polling intervals). A Child that is still running when its owner is destroyed
// is SIGKILLed and reaped, so a failing test (doctest REQUIRE throws) leaves no process behind;
// children are also started with PR_SET_PDEATHSIG = SIGKILL, so they die with the test process
// even if it is killed itself (a CTest timeout). A TempDir removes its tree when destroyed unless
// Keep() was called (tests keep it on failure so the logs can be read).
//
// Not thread-safe: one test thread owns these objects.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <filesystem>
#include <functional>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ics::test {

using namespace std::chrono_literals;

// A fresh directory under $TMPDIR (default /tmp), made with mkdtemp; removed on destruction.
class TempDir {
 public:
  explicit TempDir(std::string_view prefix = "ics-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::string operator/(std::string_view name) const { return (path_ / name).string(); }
  // Leave the directory in place (e.g. after a failure, to read the logs).
  void Keep() { keep_ = true; }

 private:
  std::filesystem::path path_;
  bool keep_ = false;
};

// How a child ended: exited with a status, or was killed by a signal.
struct ExitStatus {
  bool exited = false;
  int code = 0;    // if exited
  int signal = 0;  // if killed by a signal
  bool Success() const { return exited && code == 0; }
  std::string ToString() const;  // "exit 0", "signal 9 (Killed)"
};

// A child process. Move-only; owns the process until it has been reaped.
class Child {
 public:
  // Starts argv[0] (a path; no PATH search) with argv, stdin from /dev/null, stdout appended to
  // stdout_path and stderr appended to stderr_path (the same file if stderr_path is empty). The
  // child gets an empty signal mask and default signal dispositions. Errors name what failed.
  // REQUIRES: !argv.empty().
  static std::expected<Child, std::string> Spawn(const std::vector<std::string>& argv, const std::string& stdout_path,
                                                 const std::string& stderr_path = {});
  Child() = default;
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  ~Child();  // SIGKILL and reap if still running

  pid_t pid() const { return pid_; }
  // True while the process has not been reaped (reaps it without blocking if it has ended).
  bool Running();
  // The exit status once reaped.
  const std::optional<ExitStatus>& status() const { return status_; }
  // Sends a signal (no effect once reaped).
  void Signal(int signal_number);
  // Waits at most `timeout` for the process to end; its status, or nullopt if it is still running.
  std::optional<ExitStatus> Wait(std::chrono::milliseconds timeout);
  // SIGKILL, then reap (bounded: a SIGKILLed process always ends). Returns its status.
  ExitStatus Kill();
  // SIGTERM, wait up to `grace`, then SIGKILL. Returns its status.
  ExitStatus Terminate(std::chrono::milliseconds grace = 10s);

 private:
  explicit Child(pid_t pid) : pid_(pid) {}
  bool TryReap(bool block);

  pid_t pid_ = -1;
  std::optional<ExitStatus> status_;
};

// Polls `predicate` every `interval` until it holds (true) or `timeout` has passed (false).
bool WaitUntil(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval = 5ms);

// Reads a growing text file (a child's log) incrementally: each call returns the complete lines
// appended since the previous call (a trailing partial line waits for its newline). A missing
// file reads as empty.
class LineFollower {
 public:
  explicit LineFollower(std::filesystem::path path) : path_(std::move(path)) {}
  std::vector<std::string> ReadNew();
  // Every complete line read so far.
  const std::vector<std::string>& lines() const { return lines_; }
  // Polls until a line (new or already read) satisfies `predicate`; returns it, or nullopt after
  // `timeout`.
  std::optional<std::string> WaitForLine(const std::function<bool(std::string_view)>& predicate,
                                         std::chrono::milliseconds timeout);
  // Polls until at least `count` lines satisfy `predicate` in total; false after `timeout`.
  bool WaitForCount(const std::function<bool(std::string_view)>& predicate, std::size_t count,
                    std::chrono::milliseconds timeout);

 private:
  std::filesystem::path path_;
  std::uint64_t offset_ = 0;
  std::string partial_;
  std::vector<std::string> lines_;
};

// The whole file ("" if missing), and its complete lines.
std::string ReadFile(const std::filesystem::path& path);
std::vector<std::string> ReadLines(const std::filesystem::path& path);
// The last `bytes` bytes of a file, for failure messages.
std::string Tail(const std::filesystem::path& path, std::size_t bytes = 2000);

// `count` distinct TCP ports on 127.0.0.1 that were free a moment ago (bound to port 0 and
// released; another process could take one before the caller binds it, which is unlikely).
std::vector<int> PickFreeTcpPorts(std::size_t count);

// An environment variable as a positive number, or `fallback` if unset or not a number > 0.
double EnvNumber(const char* name, double fallback);

// How much slower than a Release build this build runs (AddressSanitizer 4x, Debug 2x), or
// $ICS_LIVE_SLOWDOWN: multi-process tests scale their wall-clock bounds and volumes by it.
double Slowdown();

// Keeps a multi-process test's directory (logs, stores) unless the test reached its end: built
// right after the harness (anything with KeepOnFailure(bool)), Passed() as the test's last step.
// A failed REQUIRE throws past Passed(), and the destructor keeps the directory.
template <class Harness>
class KeepUnlessPassed {
 public:
  explicit KeepUnlessPassed(Harness& harness) : harness_(harness) {}
  KeepUnlessPassed(const KeepUnlessPassed&) = delete;
  KeepUnlessPassed& operator=(const KeepUnlessPassed&) = delete;
  ~KeepUnlessPassed() { harness_.KeepOnFailure(!passed_); }
  void Passed() { passed_ = true; }

 private:
  Harness& harness_;
  bool passed_ = false;
};

// A contact plan (ION lines, times relative to the plan's origin) in which every listed pair of
// nodes is in contact both ways for `seconds` from the origin at `rate_bytes_per_s`, with
// `owlt_s` seconds of one-way light time.
struct PlanLink {
  int a = 0;
  int b = 0;
  double owlt_s = 0;
};
std::string AlwaysUpPlan(std::initializer_list<PlanLink> links, int seconds = 864'000,
                         std::int64_t rate_bytes_per_s = 100'000'000);

}  // namespace ics::test
