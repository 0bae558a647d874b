#include "cli/device_access.h"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

namespace cellguard::cli {
namespace {

std::string group_name(gid_t gid) {
  group entry{};
  group* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getgrgid_r(gid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr)
    return found->gr_name;
  return std::to_string(gid);
}

std::string user_name(uid_t uid) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwuid_r(uid, &entry, buffer.data(), buffer.size(), &found) == 0 && found != nullptr)
    return found->pw_name;
  return std::to_string(uid);
}

std::string mode_text(mode_t mode) {
  std::string text = S_ISCHR(mode) ? "c" : S_ISDIR(mode) ? "d" : "-";
  const char* letters = "rwxrwxrwx";
  for (int bit = 0; bit < 9; ++bit) text += (mode & (0400u >> bit)) != 0 ? letters[bit] : '-';
  return text;
}

// "/dev/ttyACM0" from "rtu:/dev/ttyACM0?baud=..." is done by the configuration already; a GPIO chip
// may be given by name.
std::string gpio_chip_path(const std::string& chip) { return chip.front() == '/' ? chip : "/dev/" + chip; }

}  // namespace

std::vector<ServiceUser> lookup_service_user(const std::string& name,
                                             const std::vector<std::string>& extra_groups) {
  passwd entry{};
  passwd* found = nullptr;
  std::vector<char> buffer(16384);
  if (::getpwnam_r(name.c_str(), &entry, buffer.data(), buffer.size(), &found) != 0 || found == nullptr)
    return {};
  ServiceUser user;
  user.name = name;
  user.uid = found->pw_uid;
  int count = 64;
  std::vector<gid_t> groups(static_cast<std::size_t>(count));
  if (::getgrouplist(name.c_str(), found->pw_gid, groups.data(), &count) < 0) {
    groups.resize(static_cast<std::size_t>(count));
    ::getgrouplist(name.c_str(), found->pw_gid, groups.data(), &count);
  }
  groups.resize(static_cast<std::size_t>(std::max(count, 0)));
  for (const std::string& extra : extra_groups) {
    group g{};
    group* hit = nullptr;
    std::vector<char> gbuffer(16384);
    if (::getgrnam_r(extra.c_str(), &g, gbuffer.data(), gbuffer.size(), &hit) == 0 && hit != nullptr)
      groups.push_back(hit->gr_gid);
  }
  user.groups = std::move(groups);
  return {user};
}

std::string access_problem(const std::string& path, const ServiceUser& user) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return path + " does not exist (is the device plugged in?)";
  if (user.uid == 0) return "";
  const mode_t rw_user = S_IRUSR | S_IWUSR;
  const mode_t rw_group = S_IRGRP | S_IWGRP;
  const mode_t rw_other = S_IROTH | S_IWOTH;
  bool allowed = false;
  if (st.st_uid == user.uid) {
    allowed = (st.st_mode & rw_user) == rw_user;
  } else if (std::find(user.groups.begin(), user.groups.end(), st.st_gid) != user.groups.end()) {
    allowed = (st.st_mode & rw_group) == rw_group;
  } else {
    allowed = (st.st_mode & rw_other) == rw_other;
  }
  if (allowed) return "";
  const std::string owner = user_name(st.st_uid) + ":" + group_name(st.st_gid);
  return path + " is " + mode_text(st.st_mode) + " " + owner + ": " + user.name +
         " may not read and write it (give the device the group dialout or gpio with a udev rule, "
         "see docs/deploy.md)";
}

std::vector<std::string> device_access_warnings(const edge::EdgeConfig& config, const ServiceUser& user,
                                                const std::string& sys_class_net) {
  std::vector<std::string> warnings;
  auto check = [&](const std::string& what, const std::string& path) {
    if (std::string problem = access_problem(path, user); !problem.empty())
      warnings.push_back(what + ": " + problem);
  };
  if (config.board.enabled && !config.board.link.device.empty()) check("board", config.board.link.device);
  if (config.inverter.enabled &&
      config.inverter.client.endpoint.transport == devices::InverterEndpoint::Transport::rtu)
    check("inverter", config.inverter.client.endpoint.device);
  if (config.outputs.driver == edge::OutputsSection::Driver::gpio && !config.outputs.gpio.chip.empty())
    check("outputs", gpio_chip_path(config.outputs.gpio.chip));
  const std::string prefix = "socketcan:";
  if (config.can.url.rfind(prefix, 0) == 0) {
    const std::string name = config.can.url.substr(prefix.size());
    std::ifstream operstate(sys_class_net + "/" + name + "/operstate");
    std::string state;
    if (!operstate) {
      warnings.push_back("can: interface " + name +
                         " does not exist (CAN HAT overlay loaded? see docs/deploy.md)");
    } else if (std::getline(operstate, state) && state != "up" && state != "unknown") {
      // vcan reports "unknown" when up; a real controller "up", or "down" before networkd set its bitrate.
      warnings.push_back("can: interface " + name + " is " + state +
                         " (systemd-networkd brings it up with its bitrate: "
                         "/usr/lib/systemd/network/80-cellguard-can0.network)");
    }
  }
  return warnings;
}

}  // namespace cellguard::cli
