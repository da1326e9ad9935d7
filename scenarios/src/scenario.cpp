#include "scenarios/scenario.h"

#include <algorithm>

namespace ics::scenarios {

const NodeSpec* Scenario::FindNode(std::string_view node_name) const {
  auto it = std::ranges::find_if(nodes, [&](const NodeSpec& n) { return n.name == node_name; });
  return it == nodes.end() ? nullptr : &*it;
}

const NodeSpec* Scenario::FindNode(NodeNumber id) const {
  auto it = std::ranges::find_if(nodes, [&](const NodeSpec& n) { return n.id == id; });
  return it == nodes.end() ? nullptr : &*it;
}

const NodeSpec* Scenario::Coordinator() const {
  auto it = std::ranges::find_if(nodes, [](const NodeSpec& n) { return n.role == Role::kCoordinator; });
  return it == nodes.end() ? nullptr : &*it;
}

}  // namespace ics::scenarios
