# What signaling servers read from Redis (src/signaling/redis_wire.*): relay envelopes and redis:// URLs.
rtcpeer_add_fuzzer(signaling_redis
  SOURCES ${RTCPEER_FUZZ_DIR}/signaling_redis.cpp ${PROJECT_SOURCE_DIR}/src/signaling/redis_wire.cpp
  LAYERS common)
