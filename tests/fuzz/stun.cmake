rtcpeer_add_fuzzer(stun SOURCES ${RTCPEER_FUZZ_DIR}/stun.cpp LAYERS stun)
