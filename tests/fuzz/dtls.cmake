rtcpeer_add_fuzzer(dtls SOURCES ${RTCPEER_FUZZ_DIR}/dtls.cpp LAYERS dtls)
