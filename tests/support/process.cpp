#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <thread>

namespace ics::test {

namespace fs = std::filesystem;

TempDir::TempDir(std::string_view prefix) {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = fmt::format("{}/{}.XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix);
  if (::mkdtemp(pattern.data()) == nullptr) {
    std::fprintf(stderr, "TempDir: mkdtemp(%s): %s\n", pattern.c_str(), std::strerror(errno));
    std::abort();
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  if (keep_) {
    std::fprintf(stderr, "kept test directory %s\n", path_.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(path_, ec);
}

std::string ExitStatus::ToString() const {
  if (exited) return fmt::format("exit {}", code);
  return fmt::format("signal {} ({})", signal, ::strsignal(signal));
}

std::expected<Child, std::string> Child::Spawn(const std::vector<std::string>& argv, const std::string& stdout_path,
                                               const std::string& stderr_path) {
  if (argv.empty()) return std::unexpected("Spawn: empty argv");
  // Everything the child needs is prepared before fork: between fork and exec it calls only
  // async-signal-safe functions (the test process may have threads, e.g. a ZeroMQ context).
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const int out = ::open(stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (out < 0) return std::unexpected(fmt::format("Spawn {}: open {}: {}", argv[0], stdout_path, std::strerror(errno)));
  int err = out;
  if (!stderr_path.empty() && stderr_path != stdout_path) {
    err = ::open(stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (err < 0) {
      ::close(out);
      return std::unexpected(fmt::format("Spawn {}: open {}: {}", argv[0], stderr_path, std::strerror(errno)));
    }
  }
  const int null_in = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) {
    const int e = errno;
    ::close(out);
    if (err != out) ::close(err);
    if (null_in >= 0) ::close(null_in);
    return std::unexpected(fmt::format("Spawn {}: fork: {}", argv[0], std::strerror(e)));
  }
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    for (int s : {SIGTERM, SIGINT, SIGUSR1, SIGPIPE, SIGCHLD}) ::signal(s, SIG_DFL);
    if (null_in >= 0) ::dup2(null_in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  ::close(out);
  if (err != out) ::close(err);
  if (null_in >= 0) ::close(null_in);
  return Child(pid);
}

Child::Child(Child&& other) noexcept : pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
  other.status_.reset();
}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0 && !status_) Kill();
    pid_ = other.pid_;
    status_ = other.status_;
    other.pid_ = -1;
    other.status_.reset();
  }
  return *this;
}

Child::~Child() {
  if (pid_ > 0 && !status_) Kill();
}

bool Child::TryReap(bool block) {
  if (pid_ <= 0 || status_) return true;
  int raw = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &raw, block ? 0 : WNOHANG);
  } while (r < 0 && errno == EINTR);
  if (r == 0) return false;
  ExitStatus s;
  if (r < 0) {  // not our child any more (should not happen): treat as gone
    s.exited = true;
    s.code = -1;
  } else if (WIFEXITED(raw)) {
    s.exited = true;
    s.code = WEXITSTATUS(raw);
  } else if (WIFSIGNALED(raw)) {
    s.signal = WTERMSIG(raw);
  }
  status_ = s;
  return true;
}

bool Child::Running() { return pid_ > 0 && !TryReap(false); }

void Child::Signal(int signal_number) {
  if (Running()) ::kill(pid_, signal_number);
}

std::optional<ExitStatus> Child::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  WaitUntil([this] { return TryReap(false); }, timeout, 2ms);
  return status_;
}

ExitStatus Child::Kill() {
  if (Running()) ::kill(pid_, SIGKILL);
  TryReap(true);
  return status_.value_or(ExitStatus{});
}

ExitStatus Child::Terminate(std::chrono::milliseconds grace) {
  Signal(SIGTERM);
  if (auto s = Wait(grace)) return *s;
  return Kill();
}

bool WaitUntil(const std::function<bool()>& predicate, std::chrono::milliseconds timeout,
               std::chrono::milliseconds interval) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (predicate()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(interval);
  }
}

std::vector<std::string> LineFollower::ReadNew() {
  std::vector<std::string> fresh;
  std::ifstream in(path_, std::ios::binary);
  if (!in) return fresh;
  in.seekg(static_cast<std::streamoff>(offset_));
  std::string chunk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  offset_ += chunk.size();
  partial_ += chunk;
  std::size_t start = 0;
  for (std::size_t nl; (nl = partial_.find('\n', start)) != std::string::npos; start = nl + 1) {
    fresh.emplace_back(partial_, start, nl - start);
  }
  partial_.erase(0, start);
  lines_.insert(lines_.end(), fresh.begin(), fresh.end());
  return fresh;
}

std::optional<std::string> LineFollower::WaitForLine(const std::function<bool(std::string_view)>& predicate,
                                                     std::chrono::milliseconds timeout) {
  std::optional<std::string> found;
  std::size_t checked = 0;
  WaitUntil(
      [&] {
        ReadNew();
        for (; checked < lines_.size(); ++checked) {
          if (predicate(lines_[checked])) {
            found = lines_[checked];
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

bool LineFollower::WaitForCount(const std::function<bool(std::string_view)>& predicate, std::size_t count,
                                std::chrono::milliseconds timeout) {
  std::size_t matched = 0, checked = 0;
  return WaitUntil(
      [&] {
        ReadNew();
        for (; checked < lines_.size(); ++checked) matched += predicate(lines_[checked]) ? 1 : 0;
        return matched >= count;
      },
      timeout);
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::vector<std::string> ReadLines(const fs::path& path) {
  LineFollower follower(path);
  return follower.ReadNew();
}

std::string Tail(const fs::path& path, std::size_t bytes) {
  std::string all = ReadFile(path);
  if (all.size() > bytes) all.erase(0, all.size() - bytes);
  return all;
}

std::vector<int> PickFreeTcpPorts(std::size_t count) {
  std::vector<int> ports;
  std::vector<int> fds;  // held open until all are picked, so the kernel hands out distinct ports
  for (std::size_t i = 0; i < count; ++i) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) break;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof addr;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ::close(fd);
      break;
    }
    fds.push_back(fd);
    ports.push_back(ntohs(addr.sin_port));
  }
  for (int fd : fds) ::close(fd);
  if (ports.size() != count) {
    std::fprintf(stderr, "PickFreeTcpPorts: could not bind %zu ports on 127.0.0.1\n", count);
    std::abort();
  }
  return ports;
}

double EnvNumber(const char* name, double fallback) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  const double v = std::strtod(text, &end);
  return (end != text && *end == '\0' && v > 0) ? v : fallback;
}

double Slowdown() {
#if defined(__SANITIZE_ADDRESS__)
  constexpr double kBuild = 4.0;
#elif !defined(NDEBUG)
  constexpr double kBuild = 2.0;
#else
  constexpr double kBuild = 1.0;
#endif
  return EnvNumber("ICS_LIVE_SLOWDOWN", kBuild);
}

std::string AlwaysUpPlan(std::initializer_list<PlanLink> links, int seconds, std::int64_t rate_bytes_per_s) {
  std::string plan;
  for (const PlanLink& l : links) {
    plan += fmt::format("a contact +0 +{0} {1} {2} {3}\na contact +0 +{0} {2} {1} {3}\n", seconds, l.a, l.b,
                        rate_bytes_per_s);
    plan += fmt::format("a range +0 +{} {} {} {}\n", seconds, l.a, l.b, l.owlt_s);
  }
  return plan;
}

}  // namespace ics::test
