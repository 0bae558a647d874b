// The project's rig DBC (data/cellguard-rig.dbc), built into the binary at compile time so that
// `cellguard sim` runs from any directory; `--dbc FILE` replaces it.
#pragma once

#include <string_view>

namespace cellguard::sim {

std::string_view builtin_rig_dbc();

}  // namespace cellguard::sim
