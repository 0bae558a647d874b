// The spdlog pattern of the long-running tools (edge, server, sim). On a terminal or in a file each
// line carries its wall-clock time; under systemd, whose journal stamps every line itself, the time
// is left out so that `journalctl` does not show two timestamps.
#pragma once

#include <string>
#include <string_view>

namespace cellguard {

// True when standard error is connected to the journal: $JOURNAL_STREAM ("DEVICE:INODE", set by
// systemd) names the very file standard error is (not one inherited by a redirected child).
bool stderr_is_journal();

// "%Y-%m-%dT%H:%M:%S.%e %^%l%$ NAME: %v", or "%l NAME: %v" when stderr_is_journal().
std::string log_pattern(std::string_view name);

}  // namespace cellguard
