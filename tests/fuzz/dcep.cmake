rtcpeer_add_fuzzer(dcep SOURCES ${RTCPEER_FUZZ_DIR}/dcep.cpp LAYERS datachannel)
