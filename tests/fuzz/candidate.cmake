rtcpeer_add_fuzzer(candidate SOURCES ${RTCPEER_FUZZ_DIR}/candidate.cpp LAYERS ice)
