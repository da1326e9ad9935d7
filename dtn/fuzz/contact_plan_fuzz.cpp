// libFuzzer target for the ION contact-plan parser: any text must parse or fail with a PlanError
// naming a line, never crash or allocate without bound.
#include <cstdint>
#include <string_view>

#include "dtn/contact_plan.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto plan = ics::dtn::ParseContactPlan(text, "fuzz", ics::clock::DtnTime::FromMillis(815'000'000'000));
  if (!plan) (void)plan.error().ToString();
  return 0;
}
