rtcpeer_bench(scale SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/scale_bench.cpp
  LAYERS peer net ice stun dtls sctp sdp datachannel common)
