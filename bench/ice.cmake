# ICE connect latency over real loopback UDP (plain program; see docs/BENCHMARKS.md "## ICE").
if(TARGET rtcpeer_ice AND TARGET rtcpeer_net)
  rtcpeer_bench(ice_connect SOURCES ice_connect.cpp LAYERS ice net)
endif()
