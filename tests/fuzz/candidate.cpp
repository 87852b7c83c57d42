// libFuzzer target: the SDP candidate-line parser. Every parse must end in a value or a reason, and whatever
// parses must survive a write/parse round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ice/candidate.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view line(reinterpret_cast<const char*>(data), size);
  auto c = rtcpeer::ice::parseCandidate(line);
  if (!c) {
    if (c.reason().empty()) std::abort();
    return 0;
  }
  auto again = rtcpeer::ice::parseCandidate(c->toSdp());
  if (!again || !(*again == *c)) std::abort();
  return 0;
}
