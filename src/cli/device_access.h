// `cellguard edge check-config`: can the service user reach the devices the configuration names?
// The packaged unit runs the edge as the system user "cellguard" with SupplementaryGroups=dialout
// gpio (packaging/systemd/cellguard-edge.service); a serial port or GPIO chip that this user cannot
// open, or a CAN interface that is missing or down, is worth a warning before the rig is started.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "edge/config.h"

namespace cellguard::cli {

struct ServiceUser {
  std::string name;
  uid_t uid = 0;
  std::vector<gid_t> groups;  // primary, member of, and the unit's supplementary groups
};

// `name`'s identity from the password and group databases plus `extra_groups` (names; missing
// groups are skipped). Empty when the user does not exist.
std::vector<ServiceUser> lookup_service_user(const std::string& name,
                                             const std::vector<std::string>& extra_groups);

// Whether `user` may open `path` for reading and writing by its mode bits (root may always).
// Empty when it may; else why not, e.g. "/dev/ttyACM0 is crw-rw---- root:dialout, and cellguard is
// not in group dialout".
std::string access_problem(const std::string& path, const ServiceUser& user);

// One line per device the service user cannot use: the board's and the inverter's serial ports,
// the GPIO chip (with the gpio driver), the SocketCAN interface (missing or down).
// `sys_class_net`: where the interfaces are listed (/sys/class/net; tests pass another folder).
std::vector<std::string> device_access_warnings(const edge::EdgeConfig& config, const ServiceUser& user,
                                                const std::string& sys_class_net = "/sys/class/net");

}  // namespace cellguard::cli
