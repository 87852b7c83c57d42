# The UDP mux's routing inspection of every datagram on a shared port (src/net/udp_mux_inspect.cpp), checked against the
# STUN parser.
rtcpeer_add_fuzzer(udp_mux SOURCES ${RTCPEER_FUZZ_DIR}/udp_mux.cpp LAYERS net stun)
