include(CMakePackageConfigHelpers)

install(TARGETS rtcpeer EXPORT rtcpeerTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(DIRECTORY include/rtcpeer DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT rtcpeerTargets NAMESPACE rtcpeer:: DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/rtcpeer)

configure_package_config_file(cmake/rtcpeerConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/rtcpeerConfig.cmake
  INSTALL_DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/rtcpeer)
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/rtcpeerConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/rtcpeerConfig.cmake
              ${CMAKE_CURRENT_BINARY_DIR}/rtcpeerConfigVersion.cmake
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/cmake/rtcpeer)

configure_file(cmake/rtcpeer.pc.in ${CMAKE_CURRENT_BINARY_DIR}/rtcpeer.pc @ONLY)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/rtcpeer.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
