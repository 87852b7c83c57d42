# The Godot 3.x line protocol parser of the signaling server (src/signaling/line_protocol.cpp).
rtcpeer_add_fuzzer(signaling_lines
  SOURCES ${RTCPEER_FUZZ_DIR}/signaling_lines.cpp ${PROJECT_SOURCE_DIR}/src/signaling/line_protocol.cpp
  LAYERS common)
