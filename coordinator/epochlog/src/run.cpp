// The dispatcher between a parsed command line and the verbs: argument checking, opening the log
// (one read snapshot per command), and the mapping of every failure to one line and an exit
// status. Kept out of main() so the tests run exactly what the executable runs.
#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "epochlog/commands.h"

namespace ics::epochlog {
namespace {

int Fail(Sink& err, const Error& error) {
  err.Write(fmt::format("ics-epochlog: {}\n", OneLine(error.message)));
  return kExitError;
}

std::expected<void, Error> WriteFile(const std::string& path, const std::string& text) {
  std::FILE* file = std::fopen(path.c_str(), "wb");
  if (file == nullptr) {
    return std::unexpected(Error{Error::Kind::kIo, fmt::format("{}: cannot write ({})", path, std::strerror(errno))});
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), file) == text.size();
  const bool closed = std::fclose(file) == 0;
  if (!ok || !closed) return std::unexpected(Error{Error::Kind::kIo, fmt::format("{}: write failed", path)});
  return {};
}

}  // namespace

int RunCommand(const CommandLine& c, Sink& out, Sink& err) {
  std::optional<coordinator::ResourceName> resource;
  if (c.resource) {
    auto parsed = ParseResourceArg(*c.resource);
    if (!parsed) return Fail(err, parsed.error());
    resource = *parsed;
  }
  std::optional<std::int64_t> since, until, at;
  for (auto [text, value] : {std::pair{&c.since, &since}, std::pair{&c.until, &until}, std::pair{&c.at, &at}}) {
    if (*text) {
      auto parsed = ParseTimeArg(**text);
      if (!parsed) return Fail(err, parsed.error());
      *value = *parsed;
    }
  }
  const std::string& v = c.verb;
  if (v != "epochs" && v != "leases" && v != "history" && v != "explain" && v != "verify" && v != "timeline") {
    return Fail(err, Error{Error::Kind::kUsage, fmt::format("unknown verb '{}'", v)});
  }
  if (v == "history" && !resource) return Fail(err, Error{Error::Kind::kUsage, "history needs a resource T/R"});
  if (v == "timeline" && c.out.empty()) return Fail(err, Error{Error::Kind::kUsage, "timeline needs --out FILE.svg"});

  auto reader = LogReader::Open(c.db);
  if (!reader) return Fail(err, reader.error());

  std::expected<void, Error> done;
  if (v == "epochs") {
    done = ListEpochs(*reader, out, c.output);
  } else if (v == "leases") {
    done = ListLeases(*reader, out, c.output, LeaseQuery{resource, c.rover, since, until, c.epoch});
  } else if (v == "history") {
    done = ListHistory(*reader, out, c.output, *resource);
  } else if (v == "explain") {
    auto explained = ExplainRequests(*reader, ExplainQuery{c.request_id, c.rover, at});
    if (!explained) return Fail(err, explained.error());
    done = WriteExplanations(*explained, out, c.output);
  } else if (v == "verify") {
    auto report = Verify(*reader, c.verify);
    if (!report) return Fail(err, report.error());
    const int status = WriteVerifyReport(*report, out, c.output);
    out.Finish();
    return status;
  } else {
    auto model = BuildTimeline(*reader, TimelineQuery{resource, since, until});
    if (!model) return Fail(err, model.error());
    done = WriteFile(c.out, RenderTimelineSvg(*model));
    if (done) {
      out.Write(fmt::format("wrote {} ({} resources, {} epochs)\n", c.out, model->lanes.size(), model->epochs.size()));
    }
  }
  out.Finish();
  if (!done) return Fail(err, done.error());
  return kExitOk;
}

}  // namespace ics::epochlog
