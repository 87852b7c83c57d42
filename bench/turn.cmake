# TURN setup time and throughput through a coturn child on loopback (plain program; docs/BENCHMARKS.md "## TURN").
if(TARGET rtcpeer_ice AND TARGET rtcpeer_net)
  rtcpeer_bench(turn SOURCES turn_bench.cpp LAYERS ice net)
endif()
