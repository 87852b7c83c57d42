# The UDP mux alone (Configuration::udpMux): memory per member and routing cost per datagram, 10 .. 10,000 members
# on one loopback port (plain program; docs/BENCHMARKS.md "## UDP mux").
rtcpeer_bench(udp_mux SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/udp_mux_bench.cpp LAYERS net)
