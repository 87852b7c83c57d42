rtcpeer_add_fuzzer(sdp SOURCES ${RTCPEER_FUZZ_DIR}/sdp.cpp LAYERS sdp)
