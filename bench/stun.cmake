rtcpeer_bench(stun SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/stun_bench.cpp LAYERS stun)
