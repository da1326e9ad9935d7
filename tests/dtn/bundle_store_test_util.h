// Helpers shared by the bundle store and node tests: temp directories and stored-bundle records.
#pragma once

#include <doctest/doctest.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "dtn/bundle.h"
#include "dtn/bundle_store.h"
#include "dtn/codec.h"

namespace ics::dtn::test {

// A fresh directory under /tmp (mkdtemp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir() {
    std::string pattern = "/tmp/ics-dtn-test-XXXXXX";
    if (mkdtemp(pattern.data()) == nullptr) FAIL("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

// An encoded bundle and the record a node would store for it.
struct TestBundle {
  StoredBundleInfo info;
  std::vector<std::uint8_t> bytes;
};

// From ipn:source.1, creation [created_ms, seq], to `destination`, expiring at expires_ms.
inline TestBundle MakeTestBundle(std::uint64_t source, std::int64_t created_ms, std::uint64_t seq,
                                 const Eid& destination, Priority priority, std::int64_t expires_ms,
                                 BundleDisposition disposition = BundleDisposition::kForward,
                                 std::size_t payload_bytes = 16) {
  const Bundle b = MakeBundle(Eid::Ipn(source, 1), destination, {clock::DtnTime::FromMillis(created_ms), seq},
                              clock::Duration(expires_ms - created_ms),
                              std::vector<std::uint8_t>(payload_bytes, static_cast<std::uint8_t>(seq)), priority);
  TestBundle t;
  t.bytes = Encode(b);
  t.info.id = b.Id();
  t.info.destination = destination;
  t.info.priority = priority;
  t.info.disposition = disposition;
  t.info.received_at = clock::DtnTime::FromMillis(created_ms);
  t.info.expires_at = clock::DtnTime::FromMillis(expires_ms);
  t.info.size_bytes = t.bytes.size();
  return t;
}

}  // namespace ics::dtn::test
