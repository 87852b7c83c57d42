# The signaling message parser and the lobby state machine (src/signaling), without the Boost I/O shell.
find_package(nlohmann_json 3.10 CONFIG QUIET)
if(nlohmann_json_FOUND)
  rtcpeer_add_fuzzer(signaling
    SOURCES ${RTCPEER_FUZZ_DIR}/signaling.cpp ${PROJECT_SOURCE_DIR}/src/signaling/protocol.cpp
            ${PROJECT_SOURCE_DIR}/src/signaling/lobbies.cpp
    LAYERS common
    LIBS nlohmann_json::nlohmann_json)
endif()
