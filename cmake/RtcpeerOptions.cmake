include(GNUInstallDirs)

if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE RelWithDebInfo CACHE STRING "Build type" FORCE)
endif()

if(RTCPEER_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

if(RTCPEER_FUZZ)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "RTCPEER_FUZZ needs clang (use the 'fuzz' preset)")
  endif()
  # Instrument everything for coverage; the libFuzzer main is linked into fuzz targets only.
  add_compile_options(-fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer)
  add_link_options(-fsanitize=address,undefined)
endif()

function(rtcpeer_target_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
    -Wcast-align -Woverloaded-virtual -Wnull-dereference -Wimplicit-fallthrough)
  if(RTCPEER_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(RTCPEER_SANITIZE AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # g++ 12 with ASan at -O2 reports uninitialized reads inside std::variant/std::optional moves that cannot
    # happen (the sanitizer's instrumentation defeats its flow analysis); the non-sanitized builds keep the warning.
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
endfunction()

# rtcpeer_layer(<layer> SOURCES ... [DEPENDS <layer>...] [LIBS <imported targets>...])
# Declares the OBJECT library rtcpeer_<layer>. Internal headers are included as "<layer>/x.hpp".
function(rtcpeer_layer layer)
  cmake_parse_arguments(L "" "" "SOURCES;DEPENDS;LIBS" ${ARGN})
  add_library(rtcpeer_${layer} OBJECT ${L_SOURCES})
  target_include_directories(rtcpeer_${layer} PUBLIC
    ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  foreach(dep IN LISTS L_DEPENDS)
    target_link_libraries(rtcpeer_${layer} PUBLIC rtcpeer_${dep})
  endforeach()
  target_link_libraries(rtcpeer_${layer} PUBLIC ${L_LIBS})
  rtcpeer_target_warnings(rtcpeer_${layer})
endfunction()

# Object libraries pass their objects only to targets that link them directly, so everything that links
# layers names the whole closure; this resolves it from the DEPENDS graph recorded on each layer.
function(rtcpeer_layer_closure out)
  set(result "")
  set(todo ${ARGN})
  while(todo)
    list(POP_FRONT todo layer)
    if(NOT layer IN_LIST result)
      list(APPEND result ${layer})
      get_target_property(libs rtcpeer_${layer} INTERFACE_LINK_LIBRARIES)
      if(libs)
        foreach(l IN LISTS libs)
          if(l MATCHES "^rtcpeer_(.+)$")
            list(APPEND todo ${CMAKE_MATCH_1})
          endif()
        endforeach()
      endif()
    endif()
  endwhile()
  set(${out} ${result} PARENT_SCOPE)
endfunction()

# Link a target against the given layers and everything they depend on.
function(rtcpeer_link_layers target)
  rtcpeer_layer_closure(all ${ARGN})
  foreach(layer IN LISTS all)
    target_link_libraries(${target} PRIVATE rtcpeer_${layer})
  endforeach()
endfunction()
