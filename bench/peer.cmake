rtcpeer_bench(peer SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/peer_bench.cpp
  LAYERS peer net ice stun dtls sctp sdp datachannel common)
