// Goal: the ION-style contact plan parser accepts the lines ION writes and rejects every malformed
// line with the right line and column, and the plan answers link and light-time queries correctly.
// Method: parse small literal plans (and one temp file) and compare with hand-computed times in ms.
#include "dtn/contact_plan.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

namespace {

using ics::clock::DtnTime;
using ics::clock::Duration;
using ics::dtn::Contact;
using ics::dtn::ContactPlan;
using ics::dtn::ParseContactPlan;
using ics::dtn::PlanError;

DtnTime Ms(std::int64_t ms) { return DtnTime::FromMillis(ms); }
DtnTime S(std::int64_t s) { return DtnTime::FromMillis(s * 1000); }

PlanError ParseError(std::string_view text) {
  auto plan = ParseContactPlan(text, "plan.txt", DtnTime());
  REQUIRE_FALSE(plan.has_value());
  return plan.error();
}

}  // namespace

TEST_CASE("contact plan: parses contacts and ranges with comments, blank lines, tabs and CRLF") {
  const char* text =
      "# Earth-Mars relay plan\n"
      "\n"
      "   a contact +0 +3600 1 2 100000   \n"
      "a\tcontact\t+60.5\t+120\t2\t1\t500\t0.75\r\n"
      "a range +0 +3600 1 2 12 # light time to the orbiter\n"
      "a range +0 +3600 2 3 1.25\n"
      "  # indented comment\n";
  auto plan = ParseContactPlan(text, "plan.txt", DtnTime());
  REQUIRE_MESSAGE(plan.has_value(), plan.error().ToString());
  REQUIRE(plan->contacts().size() == 2);
  // Sorted by from node first.
  CHECK(plan->contacts()[0] == Contact{S(0), S(3600), 1, 2, 100000, 1.0});
  CHECK(plan->contacts()[1] == Contact{Ms(60'500), S(120), 2, 1, 500, 0.75});
  REQUIRE(plan->ranges().size() == 2);
  CHECK(plan->ranges()[0].owlt == Duration(12'000));
  CHECK(plan->ranges()[1].owlt == Duration(1'250));
  CHECK(plan->ranges()[1].a == 2);
  CHECK(plan->ranges()[1].b == 3);
}

TEST_CASE("contact plan: relative times count from the plan epoch, absolute times do not") {
  auto epoch = DtnTime::ParseIso8601("2026-11-29T00:00:00Z");
  REQUIRE(epoch.has_value());
  const char* text =
      "a contact +10 +20 1 2 1000\n"
      "a contact 2026/11/29-01:00:00 2026/11/29-02:00:00 1 3 1000\n"
      "a contact 2026-11-29T03:00:00Z 2026-11-29T03:00:30.5Z 1 4 1000\n";
  auto plan = ParseContactPlan(text, "plan.txt", *epoch);
  REQUIRE_MESSAGE(plan.has_value(), plan.error().ToString());
  auto c12 = plan->ContactsBetween(1, 2);
  REQUIRE(c12.size() == 1);
  CHECK(c12[0].start == *epoch + Duration(10'000));
  CHECK(c12[0].end == *epoch + Duration(20'000));
  auto c13 = plan->ContactsBetween(1, 3);
  REQUIRE(c13.size() == 1);
  CHECK(c13[0].start == *epoch + Duration(3'600'000));
  CHECK(c13[0].end == *epoch + Duration(7'200'000));
  auto c14 = plan->ContactsBetween(1, 4);
  REQUIRE(c14.size() == 1);
  CHECK(c14[0].start == *epoch + Duration(10'800'000));
  CHECK(c14[0].end == *epoch + Duration(10'830'500));
  // ION's absolute form is UTC: 2000/01/01-00:00:10 is DTN time 10 s.
  auto abs = ParseContactPlan("a range 2000/01/01-00:00:10 2000/01/01-00:01:00 1 2 1", "p", *epoch);
  REQUIRE(abs.has_value());
  CHECK(abs->ranges()[0].start == S(10));
  CHECK(abs->ranges()[0].end == S(60));
}

TEST_CASE("contact plan: every error names its line and column") {
  struct Case {
    const char* text;
    int line;
    int column;
    const char* message_part;
  };
  const Case cases[] = {
      {"m horizon +0\n", 1, 1, "unknown command 'm'"},
      {"# ok\n  x contact +0 +1 1 2 3\n", 2, 3, "unknown command 'x'"},
      {"a region +0 +1 1 2 3", 1, 3, "unknown object 'region'"},
      {"a", 1, 2, "missing 'contact' or 'range'"},
      {"a contact +0 +10 1 2", 1, 21, "missing RATE"},
      {"a range +0 +10 1 2", 1, 19, "missing OWLT"},
      {"a contact +0", 1, 13, "missing END"},
      {"a contact +0 +10 0 2 100", 1, 18, "FROM node number must be > 0"},
      {"a contact +0 +10 1 0 100", 1, 20, "TO node number must be > 0"},
      {"a contact +0 +10 1 2 0", 1, 22, "RATE must be > 0"},
      {"a contact +10 +10 1 2 100", 1, 15, "END '+10' must be after START '+10'"},
      {"a contact +20 +10 1 2 100", 1, 15, "must be after START"},
      {"a contact +0 +10 1 2 99999999999999999999", 1, 22, "RATE '99999999999999999999' is out of range"},
      {"a contact +0 +10 1 18446744073709551616 5", 1, 20, "TO '18446744073709551616' is out of range"},
      {"a contact +0 +10000000000000 1 2 5", 1, 14, "END '10000000000000' is out of range"},
      {"a contact +0 +1.2345 1 2 5", 1, 14, "up to 3 decimals"},
      {"a contact 0 +10 1 2 5", 1, 11, "START must be +SECONDS"},
      {"a contact +0 +-5 1 2 5", 1, 14, "END must be seconds"},
      {"a contact +0 +10 1 2 -5", 1, 22, "RATE must be a non-negative integer"},
      {"a contact +0 +10 1 2 5 1.5", 1, 24, "CONFIDENCE must be a number in [0, 1]"},
      {"a contact +0 +10 1 2 5 1 extra", 1, 26, "unexpected 'extra'"},
      {"a range +0 +10 1 2 5 6", 1, 22, "unexpected '6'"},
      {"a range +0 +10 1 2 x", 1, 20, "OWLT must be seconds"},
      {"a range 2026/02/30-00:00:00 +10 1 2 1", 1, 9, "no such date"},
      {"a range 2026/02/03 +10 1 2 1", 1, 9, "wrong layout"},
      {"a contact +0 +10 1 2 100\n\na contact +0 +10 1 2 1x\n", 3, 22, "RATE must be"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.text);
    PlanError error = ParseError(c.text);
    CHECK(error.source == "plan.txt");
    CHECK(error.line == c.line);
    CHECK(error.column == c.column);
    CHECK_MESSAGE(error.message.find(c.message_part) != std::string::npos, error.message);
  }
}

TEST_CASE("contact plan: error text is file:line:column: message") {
  PlanError error = ParseError("\n\na contact +0 +10 0 2 100\n");
  CHECK(error.ToString() == "plan.txt:3:18: FROM node number must be > 0 (got '0')");
  CHECK(PlanError{"p.txt", 0, 0, "cannot read: gone"}.ToString() == "p.txt: cannot read: gone");
}

TEST_CASE("contact plan: input beyond the line and length bounds is an error, not a big allocation") {
  std::string long_line = "a contact +0 +10 1 2 100 #" + std::string(ics::dtn::kPlanLineLengthMax, 'x');
  PlanError error = ParseError("a range +0 +10 1 2 1\n" + long_line + "\n");
  CHECK(error.line == 2);
  CHECK(error.column == static_cast<int>(ics::dtn::kPlanLineLengthMax) + 1);
  CHECK(error.message.find("line longer than") != std::string::npos);

  std::string many(ics::dtn::kPlanLinesMax + 1, '\n');
  PlanError too_many = ParseError(many);
  CHECK(too_many.line == static_cast<int>(ics::dtn::kPlanLinesMax) + 1);
  CHECK(too_many.message.find("too many lines") != std::string::npos);
  // Exactly the maximum is fine.
  CHECK(ParseContactPlan(std::string(ics::dtn::kPlanLinesMax, '\n'), "p", DtnTime()).has_value());
}

TEST_CASE("contact plan: ranges hold in both directions, contacts in one") {
  auto plan = ParseContactPlan(
      "a contact +0 +100 1 2 1000\n"
      "a range +0 +100 2 1 7\n",
      "plan.txt", DtnTime());
  REQUIRE(plan.has_value());
  CHECK(plan->OwltAt(1, 2, S(50)) == Duration(7'000));
  CHECK(plan->OwltAt(2, 1, S(50)) == Duration(7'000));
  CHECK_FALSE(plan->OwltAt(1, 2, S(100)).has_value());  // end is exclusive
  CHECK_FALSE(plan->OwltAt(1, 3, S(50)).has_value());
  CHECK(plan->IsLinkOpen(1, 2, S(0)));
  CHECK(plan->IsLinkOpen(1, 2, Ms(99'999)));
  CHECK_FALSE(plan->IsLinkOpen(1, 2, S(100)));
  CHECK_FALSE(plan->IsLinkOpen(2, 1, S(50)));
  // The clock/ view of the same ranges.
  auto bound = plan->range_table().Bound(1, 2, S(10), S(20));
  REQUIRE(bound.has_value());
  CHECK(bound->max == Duration(7'000));
}

TEST_CASE("contact plan: overlapping ranges give the largest OWLT and change points") {
  ContactPlan plan;
  plan.AddRange({S(0), S(100), 1, 2, Duration(5'000)});
  plan.AddRange({S(50), S(80), 2, 1, Duration(9'000)});
  plan.AddRange({S(200), S(300), 1, 2, Duration(4'000)});
  CHECK(plan.OwltAt(1, 2, S(10)) == Duration(5'000));
  CHECK(plan.OwltAt(1, 2, S(60)) == Duration(9'000));
  CHECK(plan.OwltAt(2, 1, S(90)) == Duration(5'000));
  CHECK_FALSE(plan.OwltAt(1, 2, S(150)).has_value());
  CHECK(plan.OwltAt(1, 2, S(250)) == Duration(4'000));
  CHECK(plan.NextRangeChange(1, 2, S(10)) == S(50));
  CHECK(plan.NextRangeChange(1, 2, S(50)) == S(80));
  CHECK(plan.NextRangeChange(1, 2, S(90)) == S(100));
  CHECK(plan.NextRangeChange(1, 2, S(100)) == S(200));
  CHECK_FALSE(plan.NextRangeChange(1, 2, S(300)).has_value());
}

TEST_CASE("contact plan: contact queries by node, pair and time") {
  ContactPlan plan;
  plan.AddContact({S(100), S(200), 1, 2, 1000});
  plan.AddContact({S(0), S(50), 1, 2, 500});
  plan.AddContact({S(10), S(20), 1, 3, 1000});
  plan.AddContact({S(150), S(160), 1, 2, 9000});
  plan.AddContact({S(0), S(10), 2, 1, 1000});
  CHECK(plan.ContactsFrom(1).size() == 4);
  CHECK(plan.ContactsFrom(2).size() == 1);
  CHECK(plan.ContactsFrom(7).empty());
  auto between = plan.ContactsBetween(1, 2);
  REQUIRE(between.size() == 3);
  CHECK(between[0].start == S(0));
  CHECK(between[1].start == S(100));
  CHECK(between[2].start == S(150));
  CHECK(plan.ContactAt(1, 2, S(155))->rate_bytes_per_s == 9000);  // the faster of two
  CHECK(plan.ContactAt(1, 2, S(120))->rate_bytes_per_s == 1000);
  CHECK_FALSE(plan.ContactAt(1, 2, S(60)).has_value());
  CHECK(plan.NextContactStart(1, 2, S(20)) == S(20));  // open now
  CHECK(plan.NextContactStart(1, 2, S(50)) == S(100));
  CHECK(plan.NextContactStart(1, 2, S(170)) == S(170));
  CHECK_FALSE(plan.NextContactStart(1, 2, S(200)).has_value());
  CHECK_FALSE(plan.NextContactStart(3, 1, S(0)).has_value());
  CHECK(plan.FirstStart() == S(0));
  CHECK(plan.LastEnd() == S(200));
}

TEST_CASE("contact plan: loads a file and names the path in errors") {
  char dir_template[] = "/tmp/ics-plan-XXXXXX";
  char* dir = mkdtemp(dir_template);
  REQUIRE(dir != nullptr);
  std::string path = std::string(dir) + "/plan.txt";
  {
    std::ofstream out(path);
    out << "a contact +0 +10 1 2 100\na range +0 +10 1 2 1\n";
  }
  auto plan = ics::dtn::LoadContactPlan(path, DtnTime());
  REQUIRE_MESSAGE(plan.has_value(), plan.error().ToString());
  CHECK(plan->contacts().size() == 1);
  {
    std::ofstream out(path);
    out << "a contact +0 +10 1 2 100\nd contact +0 1 2\n";
  }
  auto bad = ics::dtn::LoadContactPlan(path, DtnTime());
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().ToString().starts_with(path + ":2:1: unknown command 'd'"));
  auto missing = ics::dtn::LoadContactPlan(std::string(dir) + "/nope.txt", DtnTime());
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().line == 0);
  CHECK(missing.error().ToString().starts_with(std::string(dir) + "/nope.txt: cannot read"));
  std::remove(path.c_str());
  rmdir(dir);
}
