// Fuzzes the Godot 3.x line-protocol parser of the signaling server: any frame either parses or fails with a
// reason, and a relayed message (offer, answer, candidate) survives serializeLine -> parseLine unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "signaling/line_protocol.hpp"

using namespace rtcpeer::signaling;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  (void)detectDialect(input);
  auto m = parseLine(input);
  if (!m) {
    if (m.reason().empty()) std::abort();
    return 0;
  }
  if (m->id < 0 || m->id > kMaxPeerId) std::abort();
  if (m->type == MessageType::Offer || m->type == MessageType::Answer || m->type == MessageType::Candidate) {
    auto again = parseLine(serializeLine(*m));
    if (!again || again->type != m->type || again->id != m->id || again->data != m->data) std::abort();
  }
  return 0;
}
