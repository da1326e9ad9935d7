// Goal: an agent daemon whose contact plan gives no route to the coordinator over the coming day
// refuses to start and says why, instead of deriving its lease term from the year-long wait that
// stands for "no route" (an eight-year lease on a pad). Method: the real ics-rover-agent with a
// plan that ends an hour from now; no network is needed, it must exit before binding anything
// that matters.
#include <doctest/doctest.h>

#include <fmt/format.h>

#include "leases/lease_net.h"

namespace ics::leases {
namespace {

TEST_CASE("an agent whose plan has no route to the coordinator over the next day refuses to start") {
  test::TempDir dir("ics-agent-start");
  const std::string plan = dir / "plan";
  {
    std::FILE* f = std::fopen(plan.c_str(), "w");
    REQUIRE(f != nullptr);
    std::fputs(test::AlwaysUpPlan({{1, 2, 1}}, 3600).c_str(), f);
    std::fclose(f);
  }
  auto child = test::Child::Spawn({AgentExe(), "run", "--id", "ipn:2", "--coordinator", "ipn:1", "--data",
                                   dir / "r2", "--plan", plan, "--listen", "ipc://" + (dir / "l2"), "--neighbour",
                                   "ipn:1=ipc://" + (dir / "l1"), "--control", "ipc://" + (dir / "ctl"), "--quiet"},
                                  dir / "out");
  REQUIRE(child);
  const auto status = child->Wait(Wall(30));
  REQUIRE_MESSAGE(status, "the agent kept running with a plan that ends in an hour");
  const std::string out = test::ReadFile(dir / "out");
  CHECK_MESSAGE(status->exited, out);
  CHECK_MESSAGE(status->code == 2, out);
  CHECK_MESSAGE(out.find("--plan: no route from ipn:2 to the coordinator ipn:1") != std::string::npos, out);
  CHECK_MESSAGE(out.find("agent-start") == std::string::npos, out);
}

}  // namespace
}  // namespace ics::leases
