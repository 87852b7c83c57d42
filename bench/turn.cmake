# TURN setup time and throughput through a coturn child on loopback, agent level and PeerConnection level
# (plain program; docs/BENCHMARKS.md "## TURN").
if(TARGET rtcpeer_peer)
  rtcpeer_bench(turn SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/turn_bench.cpp
    LAYERS peer net ice stun dtls sctp sdp datachannel common)
endif()
