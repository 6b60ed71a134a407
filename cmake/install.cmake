# Installation and packaging (included from the top-level CMakeLists.txt when CRASHKIT_INSTALL):
#   component "cli": the crashkit executable                  -> Debian package crashkit
#   component "dev": headers, static libraries, CMake package,
#                    pkg-config files                          -> Debian package libcrashkit-dev
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)
set(CRASHKIT_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/crashkit)

install(TARGETS crashkit RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT cli)
# The power-loss shim, found by the CLI at <prefix>/<libdir>/crashkit/ (harness/src/cell/power_cut.cpp).
install(TARGETS crashkit_powerloss LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}/crashkit COMPONENT cli)
install(TARGETS crashkit_crash_point_protocol crashkit_crash_point crashkit_supervisor
  crashkit_powerloss_journal crashkit_powerloss_rollback crashkit_netfault crashkit_harness EXPORT crashkitTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(DIRECTORY crashpoint/include/ powerloss/include/ supervisor/include/ netfault/include/
  harness/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  COMPONENT dev)
install(EXPORT crashkitTargets NAMESPACE crashkit:: DESTINATION ${CRASHKIT_CMAKE_DIR} COMPONENT dev)
if(TARGET crashkit_testing)
  install(TARGETS crashkit_testing EXPORT crashkitTestingTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
  install(DIRECTORY testing/include/ DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT dev)
  install(EXPORT crashkitTestingTargets NAMESPACE crashkit:: DESTINATION ${CRASHKIT_CMAKE_DIR}
    COMPONENT dev)
endif()
# `--strip` (and CPack) strips executables only; static archives keep their symbols but drop
# debug info here (a 9 MB package otherwise).
set(CRASHKIT_ARCHIVES libcrashkit_crash_point_protocol.a libcrashkit_crash_point.a
  libcrashkit_powerloss_journal.a libcrashkit_powerloss_rollback.a libcrashkit_supervisor.a
  libcrashkit_netfault.a libcrashkit_harness.a)
if(TARGET crashkit_testing)
  list(APPEND CRASHKIT_ARCHIVES libcrashkit_testing.a)
endif()
install(CODE "
  if(CMAKE_INSTALL_DO_STRIP)
    foreach(a ${CRASHKIT_ARCHIVES})
      execute_process(COMMAND ${CMAKE_STRIP} --strip-debug
        \"\$ENV{DESTDIR}\${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_LIBDIR}/\${a}\" COMMAND_ERROR_IS_FATAL ANY)
    endforeach()
  endif()" COMPONENT dev)
configure_package_config_file(cmake/crashkitConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/crashkitConfig.cmake INSTALL_DESTINATION ${CRASHKIT_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/crashkitConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/crashkitConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/crashkitConfigVersion.cmake
  DESTINATION ${CRASHKIT_CMAKE_DIR} COMPONENT dev)

# pkg-config: relocatable (prefix found from the .pc file's own directory), so the files work
# from /usr, from a scratch --prefix and from a `dpkg -x` root alike.
file(RELATIVE_PATH CRASHKIT_PC_TO_PREFIX "/prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/prefix")
foreach(pc crashkit-supervisor crashkit-harness)
  configure_file(cmake/${pc}.pc.in ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc @ONLY)
  install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${pc}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endforeach()

# CPack: `cpack -G DEB` in the build directory writes crashkit_*.deb and libcrashkit-dev_*.deb.
set(CPACK_PACKAGE_NAME crashkit)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "crash-test storage daemons; nothing acknowledged may be lost")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)  # debug info stays in the build tree, as Debian packages do
set(CPACK_COMPONENTS_ALL cli dev)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "crashkit developers")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
set(CPACK_DEBIAN_CLI_PACKAGE_NAME crashkit)
set(CPACK_DEBIAN_CLI_PACKAGE_SHLIBDEPS ON)  # dpkg-shlibdeps (dpkg-dev) computes Depends
set(CPACK_DEBIAN_CLI_DESCRIPTION "crashkit command-line harness: kill-and-verify runs and crash matrices")
set(CPACK_DEBIAN_DEV_PACKAGE_NAME libcrashkit-dev)
set(CPACK_DEBIAN_DEV_PACKAGE_SECTION libdevel)
set(CPACK_DEBIAN_DEV_PACKAGE_DEPENDS "libfmt-dev, libsystemd-dev, libyaml-cpp-dev, pkg-config")
set(CPACK_DEBIAN_DEV_PACKAGE_SUGGESTS "crashkit, libgtest-dev")
set(CPACK_DEBIAN_DEV_DESCRIPTION
  "crashkit libraries: supervisor, crash points, harness, gtest crash matrices (static, headers, CMake and pkg-config files)")
include(CPack)
