rtcpeer_add_fuzzer(sctp_packet SOURCES ${RTCPEER_FUZZ_DIR}/sctp_packet.cpp LAYERS sctp)
rtcpeer_add_fuzzer(sctp_assoc SOURCES ${RTCPEER_FUZZ_DIR}/sctp_assoc.cpp LAYERS sctp)
