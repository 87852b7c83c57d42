rtcpeer_add_fuzzer(turn SOURCES ${RTCPEER_FUZZ_DIR}/turn.cpp LAYERS ice)
