// Fuzzes the relay envelope parser (a message on a server's Redis channel, which anyone with access to the Redis
// may publish) and the redis:// URL parser: bounded, never crashes, and what parses survives a round trip.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "signaling/redis_wire.hpp"

using namespace rtcpeer::signaling;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto m = parseRelay(input, 4096)) {
    if (m->payload.size() > 4096) std::abort();
    auto again = parseRelay(serializeRelay(*m), 4096);
    if (!again || again->kind != m->kind || again->from != m->from || again->conn != m->conn ||
        again->code != m->code || again->payload != m->payload)
      std::abort();
  }
  if (auto u = parseRedisUrl(input)) {
    if (u->host.empty() || u->port == 0 || u->db < 0 || u->db > 15) std::abort();
  }
  return 0;
}
