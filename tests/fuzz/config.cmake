rtcpeer_add_fuzzer(config SOURCES ${RTCPEER_FUZZ_DIR}/config.cpp LAYERS datachannel)
