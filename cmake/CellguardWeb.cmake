# The web dashboard (web/): `npm ci` and `npm run build` (vite) into ${CMAKE_BINARY_DIR}/web/dist,
# which `cellguard server --web-root` serves. Needs Node.js and npm at the version web/package.json's
# "engines" names (>= 18.19: Debian 12's own nodejs 18 and npm 9 build it; vite 6, vitest 3); without
# them the dashboard is not built, with a message saying why, and its tests report themselves skipped.
# Messages about optional parts start with "cellguard: " so that `make` shows them (see the Makefile).
option(CELLGUARD_WEB "Build the web dashboard (needs Node.js and npm, the version in web/package.json's engines)" ON)

set(CELLGUARD_WEB_DIST "${CMAKE_BINARY_DIR}/web/dist")
set(CELLGUARD_WEB_SOURCE "${PROJECT_SOURCE_DIR}/web")
set(CELLGUARD_WEB_BUILT OFF)
set(CELLGUARD_WEB_WHY_NOT "")

# The minimum Node.js version comes from web/package.json ("engines": {"node": ">=X.Y"}): one place.
file(READ "${CELLGUARD_WEB_SOURCE}/package.json" web_package_json)
set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${CELLGUARD_WEB_SOURCE}/package.json")
string(JSON node_engines ERROR_VARIABLE json_error GET "${web_package_json}" engines node)
string(REGEX REPLACE "^>= *" "" CELLGUARD_WEB_NODE_MIN "${node_engines}")
if(json_error OR NOT CELLGUARD_WEB_NODE_MIN MATCHES "^[0-9]+(\\.[0-9]+)*$")
  message(FATAL_ERROR "web/package.json: \"engines\": {\"node\": \">=X.Y\"} expected, found '${node_engines}' ${json_error}")
endif()

if(CELLGUARD_WEB)
  find_program(CELLGUARD_NODE node)
  find_program(CELLGUARD_NPM npm)
  if(NOT CELLGUARD_NODE OR NOT CELLGUARD_NPM)
    set(CELLGUARD_WEB_WHY_NOT "Node.js or npm not found (scripts/install-deps.sh installs them)")
  else()
    execute_process(COMMAND "${CELLGUARD_NODE}" --version OUTPUT_VARIABLE node_version OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE node_rc)
    string(REGEX REPLACE "^v" "" node_version "${node_version}")
    if(NOT node_rc EQUAL 0 OR NOT node_version MATCHES "^[0-9]")
      set(CELLGUARD_WEB_WHY_NOT "${CELLGUARD_NODE} --version failed")
    elseif(node_version VERSION_LESS CELLGUARD_WEB_NODE_MIN)
      set(CELLGUARD_WEB_WHY_NOT "Node.js ${node_version} (${CELLGUARD_NODE}) is older than ${CELLGUARD_WEB_NODE_MIN} (web/package.json engines)")
    else()
      set(CELLGUARD_WEB_BUILT ON)
    endif()
  endif()
else()
  set(CELLGUARD_WEB_WHY_NOT "CELLGUARD_WEB=OFF")
endif()

if(CELLGUARD_WEB_BUILT)
  message(STATUS "cellguard: web dashboard: built with Node.js ${node_version} (${CELLGUARD_NODE}) into ${CELLGUARD_WEB_DIST}")
  file(GLOB_RECURSE web_sources CONFIGURE_DEPENDS "${CELLGUARD_WEB_SOURCE}/src/*")
  set(npm_stamp "${CMAKE_BINARY_DIR}/web/npm-ci.stamp")
  # npm ci installs exactly package-lock.json into web/node_modules (git-ignored); again only when it changes.
  add_custom_command(
    OUTPUT "${npm_stamp}"
    COMMAND "${CELLGUARD_NPM}" ci --no-audit --no-fund --loglevel=error
    COMMAND "${CMAKE_COMMAND}" -E touch "${npm_stamp}"
    WORKING_DIRECTORY "${CELLGUARD_WEB_SOURCE}"
    DEPENDS "${CELLGUARD_WEB_SOURCE}/package.json" "${CELLGUARD_WEB_SOURCE}/package-lock.json"
    COMMENT "web: npm ci"
    VERBATIM)
  add_custom_command(
    OUTPUT "${CELLGUARD_WEB_DIST}/index.html"
    COMMAND "${CMAKE_COMMAND}" -E env "CELLGUARD_WEB_OUT=${CELLGUARD_WEB_DIST}" "${CELLGUARD_NPM}" run build --silent
    WORKING_DIRECTORY "${CELLGUARD_WEB_SOURCE}"
    DEPENDS "${npm_stamp}" ${web_sources} "${CELLGUARD_WEB_SOURCE}/index.html" "${CELLGUARD_WEB_SOURCE}/vite.config.js"
    COMMENT "web: vite build -> ${CELLGUARD_WEB_DIST}"
    VERBATIM)
  add_custom_target(cellguard_web ALL DEPENDS "${CELLGUARD_WEB_DIST}/index.html")
else()
  message(STATUS "cellguard: web dashboard: NOT built: ${CELLGUARD_WEB_WHY_NOT}")
  add_custom_target(cellguard_web COMMAND "${CMAKE_COMMAND}" -E echo "web dashboard not built: ${CELLGUARD_WEB_WHY_NOT}" VERBATIM)
endif()
