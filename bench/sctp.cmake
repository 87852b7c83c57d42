# SCTP association benchmarks: in-memory throughput, simulated long-path throughput, idle memory.
if(TARGET rtcpeer_sim)
  rtcpeer_bench(sctp SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/sctp_bench.cpp LAYERS sctp sim)
endif()
