rtcpeer_add_fuzzer(peer_connection SOURCES ${RTCPEER_FUZZ_DIR}/peer_connection.cpp LAYERS peer_core)
