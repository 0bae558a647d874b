# Installation (FHS) and Debian packages (docs/deploy.md).
#
# `cmake --install build --prefix /usr` (or DESTDIR=... for a staging root) puts:
#   /usr/bin/cellguard, /usr/share/man/man1/cellguard*.1.gz (help2man, from every --help),
#   /usr/share/cellguard/{cellguard-rig.dbc,web/,examples/}, /usr/share/doc/cellguard*/,
#   /etc/cellguard/{edge,server}.toml (conffiles), /lib/systemd/system/cellguard-{edge,server}.service,
#   /lib/udev/rules.d/60-cellguard.rules, /lib/systemd/network/80-cellguard-can0.network.
# `make package` (cpack -G DEB in the build folder) builds three packages: cellguard (the binary, man
# pages, the system user), cellguard-edge (Pi: unit, udev rule, can0 network file, edge.toml) and
# cellguard-server (unit, dashboard, server.toml); edge and server both depend on cellguard, so one
# machine may have both (a lab's single host, the VM test).
# The packages' prefix is /usr (FHS for distribution packages), and so is `cmake --install`'s unless
# CMAKE_INSTALL_PREFIX is given: the units and edge.toml name /usr paths (CELLGUARD_FHS_PREFIX).
if(CMAKE_INSTALL_PREFIX_INITIALIZED_TO_DEFAULT)
  set(CMAKE_INSTALL_PREFIX "/usr" CACHE PATH "Install prefix" FORCE)
endif()
set(CELLGUARD_FHS_PREFIX "/usr" CACHE PATH "The prefix the packages install to, named in the units and edge.toml")
include(GNUInstallDirs)

set(CELLGUARD_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE PATH "systemd system units (Debian 12: /lib/systemd/system)")
set(CELLGUARD_UDEV_RULES_DIR "/lib/udev/rules.d" CACHE PATH "udev rules of packages")
set(CELLGUARD_NETWORKD_DIR "/lib/systemd/network" CACHE PATH "systemd-networkd files of packages")
set(CELLGUARD_CONF_DIR "/etc/cellguard" CACHE PATH "configuration (conffiles)")

set(cellguard_share "${CMAKE_INSTALL_DATADIR}/cellguard")
set(cellguard_full_share "${CELLGUARD_FHS_PREFIX}/share/cellguard")
set(packaging "${PROJECT_SOURCE_DIR}/packaging")
set(staged "${CMAKE_BINARY_DIR}/packaging")

# ---- the binary and man pages (package cellguard) -------------------------------------------------
install(TARGETS cellguard RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT common)
install(FILES "${PROJECT_SOURCE_DIR}/data/cellguard-rig.dbc" DESTINATION ${cellguard_share} COMPONENT common)

find_program(CELLGUARD_HELP2MAN help2man)
if(CELLGUARD_SANITIZE OR CELLGUARD_TSAN)
  # Sanitizer builds are for tests, never packaged: no man pages (their binary is slow to ask).
  message(STATUS "cellguard: man pages: NOT built in a sanitizer build")
elseif(CELLGUARD_HELP2MAN)
  set(man_stamp "${CMAKE_BINARY_DIR}/man/man.stamp")
  add_custom_command(
    OUTPUT "${man_stamp}"
    COMMAND "${CMAKE_COMMAND}" -E rm -rf "${CMAKE_BINARY_DIR}/man/man1"
    COMMAND "${PROJECT_SOURCE_DIR}/scripts/gen-man.sh" "$<TARGET_FILE:cellguard>" "${CMAKE_BINARY_DIR}/man/man1"
    COMMAND "${CMAKE_COMMAND}" -E touch "${man_stamp}"
    DEPENDS cellguard "${PROJECT_SOURCE_DIR}/scripts/gen-man.sh"
    COMMENT "man pages from --help (help2man)"
    VERBATIM)
  add_custom_target(man ALL DEPENDS "${man_stamp}")
  install(DIRECTORY "${CMAKE_BINARY_DIR}/man/man1" DESTINATION ${CMAKE_INSTALL_MANDIR} COMPONENT common)
  message(STATUS "cellguard: man pages: from --help with ${CELLGUARD_HELP2MAN}")
else()
  message(STATUS "cellguard: man pages: NOT built: help2man not found (scripts/install-deps.sh installs it)")
endif()

# ---- configuration: the packaged edge.toml is data/edge/rig.toml with the installed paths -------
file(READ "${PROJECT_SOURCE_DIR}/data/edge/rig.toml" edge_toml)
set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${PROJECT_SOURCE_DIR}/data/edge/rig.toml")
# Each replacement must find its text: rig.toml changed => fix it here rather than ship a wrong file.
function(cellguard_replace_in var from to)
  string(FIND "${${var}}" "${from}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "packaging: data/edge/rig.toml no longer contains '${from}' (cmake/CellguardPackaging.cmake)")
  endif()
  string(REPLACE "${from}" "${to}" replaced "${${var}}")
  set(${var} "${replaced}" PARENT_SCOPE)
endfunction()
cellguard_replace_in(edge_toml "# Check it with `cellguard edge check-config data/edge/rig.toml`."
  "# Installed by the package cellguard-edge as /etc/cellguard/edge.toml (a conffile: your changes are\n# kept on upgrades). Check it with `cellguard edge check-config /etc/cellguard/edge.toml`, then\n# `systemctl enable --now cellguard-edge` (docs: /usr/share/doc/cellguard/deploy.md).")
cellguard_replace_in(edge_toml "dbc = \"../cellguard-rig.dbc\"" "dbc = \"${cellguard_full_share}/cellguard-rig.dbc\"")
cellguard_replace_in(edge_toml "device = \"/dev/ttyACM0\"" "device = \"/dev/cellguard-board\"")
cellguard_replace_in(edge_toml "file = \"schedule-current-example.csv\"" "file = \"${cellguard_full_share}/examples/schedule-current-example.csv\"")
cellguard_replace_in(edge_toml "path = \"\"                       # SQLite file" "path = \"/var/lib/cellguard/edge.sqlite\"  # SQLite file")
cellguard_replace_in(edge_toml "group = \"\"                      # e.g. \"cellguard\"" "group = \"cellguard\"             # e.g. \"cellguard\"")
file(WRITE "${staged}/edge.toml" "${edge_toml}")
install(FILES "${staged}/edge.toml" DESTINATION ${CELLGUARD_CONF_DIR} COMPONENT edge)
install(FILES "${PROJECT_SOURCE_DIR}/data/server/server.toml" DESTINATION ${CELLGUARD_CONF_DIR}
        PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ COMPONENT server)
install(FILES "${PROJECT_SOURCE_DIR}/data/edge/rig.toml" "${PROJECT_SOURCE_DIR}/data/edge/schedule-current-example.csv"
              "${PROJECT_SOURCE_DIR}/data/edge/schedule-power-example.csv"
        DESTINATION ${cellguard_share}/examples COMPONENT edge)

# ---- systemd, udev, networkd ----------------------------------------------------------------------
set(BIN_DIR "${CELLGUARD_FHS_PREFIX}/bin")
set(DOC_DIR "${CELLGUARD_FHS_PREFIX}/share/doc/cellguard")
set(WEB_DIR "${cellguard_full_share}/web")
configure_file("${packaging}/systemd/cellguard-edge.service.in" "${staged}/cellguard-edge.service" @ONLY)
configure_file("${packaging}/systemd/cellguard-server.service.in" "${staged}/cellguard-server.service" @ONLY)
install(FILES "${staged}/cellguard-edge.service" DESTINATION ${CELLGUARD_SYSTEMD_UNIT_DIR} COMPONENT edge)
install(FILES "${packaging}/udev/60-cellguard.rules" DESTINATION ${CELLGUARD_UDEV_RULES_DIR} COMPONENT edge)
install(FILES "${packaging}/network/80-cellguard-can0.network" DESTINATION ${CELLGUARD_NETWORKD_DIR} COMPONENT edge)
install(FILES "${staged}/cellguard-server.service" DESTINATION ${CELLGUARD_SYSTEMD_UNIT_DIR} COMPONENT server)

# ---- the dashboard (package cellguard-server) -----------------------------------------------------
if(CELLGUARD_WEB_BUILT)
  install(DIRECTORY "${CELLGUARD_WEB_DIST}/" DESTINATION ${cellguard_share}/web COMPONENT server)
else()
  message(STATUS "cellguard: packages: cellguard-server WITHOUT the dashboard (${CELLGUARD_WEB_WHY_NOT})")
endif()

# ---- documentation: each package's copyright and changelog (Debian policy), the guide --------------
add_custom_command(
  OUTPUT "${staged}/changelog.gz"
  COMMAND gzip -9n -c "${packaging}/debian/changelog" > "${staged}/changelog.gz"
  DEPENDS "${packaging}/debian/changelog"
  VERBATIM)
add_custom_target(packaging_docs ALL DEPENDS "${staged}/changelog.gz")
foreach(pair IN ITEMS "common;cellguard" "edge;cellguard-edge" "server;cellguard-server")
  list(GET pair 0 component)
  list(GET pair 1 package)
  install(FILES "${packaging}/debian/copyright" "${staged}/changelog.gz"
          DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/${package} COMPONENT ${component})
endforeach()
install(FILES "${PROJECT_SOURCE_DIR}/docs/deploy.md" DESTINATION ${CMAKE_INSTALL_DATADIR}/doc/cellguard COMPONENT common)

# ---- CPack: the Debian packages -------------------------------------------------------------------
set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "cellguard")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_CONTACT "cellguard developers <maintainers@users.noreply.b-seed-f59a1708.example>")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CELLGUARD_FHS_PREFIX}")
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL common edge server)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "misc")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/cellguard/cellguard")
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
# Depends of the binary from its shared libraries (dpkg-shlibdeps), per component that has one.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_COMMON_PACKAGE_NAME "cellguard")
set(CPACK_DEBIAN_EDGE_PACKAGE_NAME "cellguard-edge")
set(CPACK_DEBIAN_SERVER_PACKAGE_NAME "cellguard-server")
set(CPACK_DEBIAN_COMMON_PACKAGE_DEPENDS "adduser")
set(CPACK_DEBIAN_EDGE_PACKAGE_DEPENDS "cellguard (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_EDGE_PACKAGE_RECOMMENDS "systemd, udev")
set(CPACK_DEBIAN_EDGE_PACKAGE_SUGGESTS "can-utils")
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "cellguard (= ${PROJECT_VERSION})")
set(CPACK_DEBIAN_SERVER_PACKAGE_RECOMMENDS "systemd")
set(CPACK_DEBIAN_COMMON_PACKAGE_SECTION "electronics")
set(CPACK_DEBIAN_EDGE_PACKAGE_SECTION "electronics")
set(CPACK_DEBIAN_SERVER_PACKAGE_SECTION "electronics")
set(CPACK_COMPONENT_COMMON_DESCRIPTION "battery rig safety controller, recorder and server (command-line tool)
cellguard guards battery energy-storage systems and test rigs and records
everything they do: CAN decoding with DBC files, a rig simulator, the edge
controller with its safety state machine, and the server that stores the
edges' streams. This package holds the cellguard binary and its man pages.")
set(CPACK_COMPONENT_EDGE_DESCRIPTION "battery rig safety controller (edge service)
The controller next to the battery: reads the modules over CAN, the sensor
board over a serial line, drives the inverter over Modbus and opens the
contactors on danger. This package runs it as a supervised systemd service
(watchdog, safe stop) and sets up the rig's devices: a udev rule for the
board (/dev/cellguard-board) and a systemd-networkd file for can0.")
set(CPACK_COMPONENT_SERVER_DESCRIPTION "battery rig data server (service and dashboard)
Receives the streams of many cellguard edges over mutual TLS 1.3 without
losing or duplicating anything, stores them in SQLite and serves the HTTP
API, Prometheus metrics, webhook alarms and the live web dashboard.")
# Maintainer scripts and conffiles under the names dpkg wants, one folder per package.
foreach(pair IN ITEMS "COMMON;cellguard" "EDGE;cellguard-edge" "SERVER;cellguard-server")
  list(GET pair 0 component)
  list(GET pair 1 package)
  set(control_files "")
  foreach(script IN ITEMS postinst prerm postrm conffiles)
    set(source "${packaging}/debian/${package}.${script}")
    if(EXISTS "${source}")
      set(mode OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
      if(script STREQUAL "conffiles")
        set(mode OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
      endif()
      configure_file("${source}" "${staged}/debian/${package}/${script}" COPYONLY FILE_PERMISSIONS ${mode})
      list(APPEND control_files "${staged}/debian/${package}/${script}")
    endif()
  endforeach()
  set(CPACK_DEBIAN_${component}_PACKAGE_CONTROL_EXTRA "${control_files}")
endforeach()
include(CPack)
