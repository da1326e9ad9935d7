// Fencing: the coordinator's tokens rise per resource, so a token below the highest seen belongs
// to a lease that has been superseded, even if its holder still believes otherwise.
#include "rover_agent/guard_core.h"

#include <fmt/format.h>

#include <algorithm>
#include <utility>

namespace ics::rover_agent {

GuardCore::GuardCore(GuardConfig config, const std::map<ResourceName, FencingToken>& highest)
    : config_(std::move(config)) {
  for (const auto& [resource, token] : highest) {
    counts_[resource].highest = token;
  }
}

FencingToken GuardCore::Highest(const ResourceName& resource) const { return Counts(resource).highest; }

GuardCounts GuardCore::Counts(const ResourceName& resource) const {
  auto it = counts_.find(resource);
  return it == counts_.end() ? GuardCounts{} : it->second;
}

void GuardCore::Reject(const coordinator::Use& use, NodeNumber source, FencingToken highest,
                       std::string detail, clock::DtnTime now) {
  out_.log.push_back(fmt::format("{} guard rejected use '{}' of {} by ipn:{} under token {}: {}",
                                 now.ToIso8601(), use.operation, use.h.resource.ToString(), source, use.token,
                                 detail));
  coordinator::Header h = use.h;
  h.sender = config_.self;
  out_.to_send.push_back(
      {source, coordinator::UseRejected{std::move(h), use.token, highest, std::move(detail)}});
}

void GuardCore::OnUse(const coordinator::Use& use, NodeNumber source, clock::DtnTime now) {
  const ResourceName& name = use.h.resource;
  if (!config_.resources.empty() &&
      std::find(config_.resources.begin(), config_.resources.end(), name) == config_.resources.end()) {
    ++dropped_;
    Reject(use, source, 0, "this guard does not front that resource", now);
    return;
  }
  auto it = counts_.find(name);
  if (it == counts_.end()) {
    if (counts_.size() >= config_.max_resources) {
      ++dropped_;
      Reject(use, source, 0, fmt::format("guard tracks too many resources (limit {})", config_.max_resources),
             now);
      return;
    }
    it = counts_.emplace(name, GuardCounts{}).first;
  }
  GuardCounts& c = it->second;
  if (use.token == 0) {
    ++c.rejected;
    Reject(use, source, c.highest, "no fencing token", now);
    return;
  }
  if (use.token < c.highest) {
    ++c.rejected;
    Reject(use, source, c.highest,
           fmt::format("token {} is older than the highest seen {}: its lease has been superseded", use.token,
                       c.highest),
           now);
    return;
  }
  if (use.token > c.highest) {
    c.highest = use.token;
    out_.to_persist.push_back(GuardRecord{name, use.token});
  }
  ++c.accepted;
  out_.accepted.push_back(AcceptedUse{name, use.token, use.operation, source});
  coordinator::Header h = use.h;
  h.sender = config_.self;
  out_.to_send.push_back({source, coordinator::UseAccepted{std::move(h), use.token}});
}

void GuardCore::OnMessage(const coordinator::Message& message, NodeNumber source, clock::DtnTime now) {
  if (const auto* use = std::get_if<coordinator::Use>(&message)) {
    OnUse(*use, source, now);
    return;
  }
  ++dropped_;
}

GuardOutput GuardCore::TakeOutput() { return std::exchange(out_, GuardOutput{}); }

}  // namespace ics::rover_agent
