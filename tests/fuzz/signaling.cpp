// Fuzzes the signaling message parser (JSON -> Message validation) and the Lobbies core behind it.
// The input is the frame for parseMessage as a whole, then, split at NUL bytes, a script for the core: each
// segment's first byte picks a connection (low 3 bits) and an event (open, text, binary, close, time passes,
// an oversized message).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string_view>

#include "signaling/lobbies.hpp"

using namespace rtcpeer;
using namespace rtcpeer::signaling;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  if (auto m = parseMessage(input)) {
    // Whatever parses must survive a round trip unchanged.
    auto again = parseMessage(serialize(*m));
    if (!again || again->type != m->type || again->id != m->id || again->data != m->data) std::abort();
  }

  SeededRandom random(1);
  Limits limits;
  limits.maxLobbies = 4;
  limits.maxPeers = 6;
  limits.maxLobbyMembers = 4;
  limits.maxMessageSize = 4096;
  Lobbies core(random, limits);
  Timestamp now{};
  std::set<ConnId> closed;
  std::string_view rest = input;
  while (!rest.empty()) {
    const auto end = rest.find('\0');
    std::string_view seg = rest.substr(0, end);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end + 1);
    if (seg.empty()) continue;
    const auto op = static_cast<std::uint8_t>(seg[0]);
    const ConnId conn = op & 7;
    seg.remove_prefix(1);
    switch ((op >> 3) % 6) {
      case 0: if (!closed.count(conn)) core.open(conn, now); break;
      case 1: core.text(conn, seg, now); break;
      case 2: core.binary(conn, now); break;
      case 3: core.closed(conn, now); closed.insert(conn); break;
      case 4:
        now += std::chrono::milliseconds(seg.size() * 250);
        if (core.nextDeadline() <= now) core.handleTimeout(now);
        break;
      case 5: core.tooLarge(conn, now); break;
    }
    while (auto a = core.pollAction()) {
      if (closed.count(a->conn)) std::abort();  // nothing may be sent to a connection after its close
      if (a->kind == Action::Kind::Close) closed.insert(a->conn);
      else if (!parseMessage(a->text)) std::abort();  // the server only emits valid frames
    }
    if (core.peerCount() > limits.maxPeers || core.lobbyCount() > limits.maxLobbies) std::abort();
  }
  return 0;
}
