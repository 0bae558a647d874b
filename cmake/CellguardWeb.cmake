# The web dashboard (web/): `npm ci` and `npm run build` (vite) into ${CMAKE_BINARY_DIR}/web/dist,
# which `cellguard server --web-root` serves. Needs Node.js >= 20.19 (vite 8) and npm; without them
# the dashboard is not built, with a message saying why, and its tests report themselves skipped.
option(CELLGUARD_WEB "Build the web dashboard (needs Node.js >= 20.19 and npm)" ON)

set(CELLGUARD_WEB_DIST "${CMAKE_BINARY_DIR}/web/dist")
set(CELLGUARD_WEB_SOURCE "${PROJECT_SOURCE_DIR}/web")
set(CELLGUARD_WEB_BUILT OFF)
set(CELLGUARD_WEB_WHY_NOT "")

if(CELLGUARD_WEB)
  find_program(CELLGUARD_NODE node)
  find_program(CELLGUARD_NPM npm)
  if(NOT CELLGUARD_NODE OR NOT CELLGUARD_NPM)
    set(CELLGUARD_WEB_WHY_NOT "Node.js or npm not found (scripts/install-deps.sh installs them)")
  else()
    execute_process(COMMAND "${CELLGUARD_NODE}" --version OUTPUT_VARIABLE node_version OUTPUT_STRIP_TRAILING_WHITESPACE
                    RESULT_VARIABLE node_rc)
    string(REGEX REPLACE "^v" "" node_version "${node_version}")
    if(NOT node_rc EQUAL 0 OR node_version VERSION_LESS 20.19)
      set(CELLGUARD_WEB_WHY_NOT "Node.js ${node_version} is older than 20.19, which vite 8 needs")
    else()
      set(CELLGUARD_WEB_BUILT ON)
    endif()
  endif()
else()
  set(CELLGUARD_WEB_WHY_NOT "CELLGUARD_WEB=OFF")
endif()

if(CELLGUARD_WEB_BUILT)
  message(STATUS "web dashboard: built with Node.js ${node_version} into ${CELLGUARD_WEB_DIST}")
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
  message(STATUS "web dashboard: NOT built: ${CELLGUARD_WEB_WHY_NOT}")
  add_custom_target(cellguard_web COMMAND "${CMAKE_COMMAND}" -E echo "web dashboard not built: ${CELLGUARD_WEB_WHY_NOT}" VERBATIM)
endif()
