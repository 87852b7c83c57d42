rtcpeer_bench(dtls SOURCES ${CMAKE_CURRENT_LIST_DIR}/dtls_bench.cpp LAYERS dtls)
