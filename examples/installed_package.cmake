# cmake -DBUILD=<rtcpeer build dir> -DSOURCE=<examples dir> -DSCRATCH=<scratch dir> [-DFLAGS=...] -DCXX=<compiler>
#   -P installed_package.cmake
# Installs the rtcpeer build into SCRATCH/prefix, builds the examples against it with find_package(rtcpeer) only
# (and pkg-config's view of the same install is checked), then runs the hello example.
file(REMOVE_RECURSE ${SCRATCH})
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "failed (${rc}): ${ARGN}\n${err}")
  endif()
endfunction()
run(${CMAKE_COMMAND} --install ${BUILD} --prefix ${SCRATCH}/prefix)
foreach(file include/rtcpeer/rtcpeer.hpp lib/pkgconfig/rtcpeer.pc lib/cmake/rtcpeer/rtcpeerConfig.cmake)
  if(NOT EXISTS ${SCRATCH}/prefix/${file})
    message(FATAL_ERROR "the install lacks ${file}")
  endif()
endforeach()
run(${CMAKE_COMMAND} -S ${SOURCE} -B ${SCRATCH}/build -DCMAKE_PREFIX_PATH=${SCRATCH}/prefix
    -DCMAKE_CXX_COMPILER=${CXX} "-DCMAKE_CXX_FLAGS=${FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${FLAGS}")
run(${CMAKE_COMMAND} --build ${SCRATCH}/build)
run(${SCRATCH}/build/rtcpeer_example_hello)
