rtcpeer_add_fuzzer(multiplayer SOURCES ${RTCPEER_FUZZ_DIR}/multiplayer.cpp LAYERS multiplayer)
