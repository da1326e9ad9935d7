// `ics-dtn decode` (bundle bytes in, JSON out) and `ics-dtn encode` (that JSON in, bundle bytes
// out). The conversion lives in dtn/bundle_json.h; this file reads and writes files.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "command.h"
#include "dtn/bundle_json.h"
#include "dtn/codec.h"

namespace ics::dtn::app {
namespace {

struct Options {
  std::string input = "-";
  bool hex = false;
  bool compact = false;
  std::size_t max_bytes = 16u << 20;
};

// Reads at most `max` bytes of FILE (or stdin for "-"); more is an error, not a truncation.
std::expected<std::string, std::string> ReadInput(const std::string& name, std::size_t max) {
  std::FILE* f = name == "-" ? stdin : std::fopen(name.c_str(), "rb");
  if (f == nullptr) return std::unexpected(fmt::format("{}: cannot open: {}", name, std::strerror(errno)));
  std::string data;
  char buf[65536];
  std::size_t n = 0;
  bool too_large = false;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    if (data.size() + n > max) {
      too_large = true;
      break;
    }
    data.append(buf, n);
  }
  const bool failed = std::ferror(f) != 0;
  if (f != stdin) std::fclose(f);
  if (too_large)
    return std::unexpected(fmt::format("{}: input is larger than the limit of {} bytes", name, max));
  if (failed) return std::unexpected(fmt::format("{}: read error", name));
  return data;
}

int Fail(std::string_view verb, std::string_view message) {
  std::fprintf(stderr, "ics-dtn %.*s: %.*s\n", static_cast<int>(verb.size()), verb.data(),
               static_cast<int>(message.size()), message.data());
  return 1;
}

// Parses the shared options; returns an exit status when the command should stop here.
std::optional<int> ParseOptions(std::string_view verb, std::string_view description, int argc, char** argv,
                                Options& opt) {
  CLI::App app{std::string(description), fmt::format("ics-dtn {}", verb)};
  app.add_option("input", opt.input, "input file, or - for stdin")->capture_default_str();
  app.add_flag("--hex", opt.hex,
               verb == "decode" ? "the input is hex text" : "write hex text instead of bytes");
  app.add_flag("--compact", opt.compact, "one-line JSON (decode)");
  app.add_option("--max-bytes", opt.max_bytes, "largest bundle accepted")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "ics-dtn %.*s: %s (see --help)\n", static_cast<int>(verb.size()), verb.data(),
                 e.what());
    return 2;
  }
  return std::nullopt;
}

DecodeLimits LimitsFor(const Options& opt) {
  DecodeLimits limits;
  limits.max_bundle_bytes = opt.max_bytes;
  limits.max_payload_bytes = opt.max_bytes;
  return limits;
}

int RunDecode(int argc, char** argv) {
  Options opt;
  if (auto status = ParseOptions("decode", "Decode a BPv7 bundle and print it as JSON.", argc, argv, opt)) {
    return *status;
  }
  // Hex text is twice the bytes, plus whitespace.
  auto text = ReadInput(opt.input, opt.hex ? 2 * opt.max_bytes + opt.max_bytes / 8 + 1024 : opt.max_bytes);
  if (!text) return Fail("decode", text.error());
  std::vector<std::uint8_t> bytes;
  if (opt.hex) {
    auto decoded = HexDecode(*text);
    if (!decoded) return Fail("decode", fmt::format("{}: {}", opt.input, decoded.error()));
    bytes = std::move(*decoded);
  } else {
    bytes.assign(text->begin(), text->end());
  }
  auto bundle = Decode(bytes, LimitsFor(opt));
  if (!bundle) return Fail("decode", fmt::format("{}: {}", opt.input, bundle.error().ToString()));
  const std::string json = BundleToJson(*bundle, opt.compact ? -1 : 2);
  std::fwrite(json.data(), 1, json.size(), stdout);
  std::fputc('\n', stdout);
  return std::fflush(stdout) == 0 ? 0 : Fail("decode", "cannot write to stdout");
}

int RunEncode(int argc, char** argv) {
  Options opt;
  if (auto status = ParseOptions("encode", "Encode a bundle given as JSON (the form decode prints).", argc,
                                 argv, opt)) {
    return *status;
  }
  auto text = ReadInput(opt.input, 2 * opt.max_bytes + (64u << 10));
  if (!text) return Fail("encode", text.error());
  auto bundle = BundleFromJson(*text, LimitsFor(opt));
  if (!bundle) return Fail("encode", fmt::format("{}: {}", opt.input, bundle.error()));
  const std::vector<std::uint8_t> bytes = Encode(*bundle);
  if (opt.hex) {
    const std::string hex = HexEncode(bytes);
    std::fwrite(hex.data(), 1, hex.size(), stdout);
    std::fputc('\n', stdout);
  } else {
    std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  }
  return std::fflush(stdout) == 0 ? 0 : Fail("encode", "cannot write to stdout");
}

const Registration kDecode{"decode", "bundle bytes in (FILE or -, --hex), one JSON object out", RunDecode};
const Registration kEncode{"encode", "the JSON of decode in, bundle bytes out (--hex: hex text)", RunEncode};

}  // namespace
}  // namespace ics::dtn::app
