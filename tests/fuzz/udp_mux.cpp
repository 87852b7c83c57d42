// Fuzzes the UDP mux's datagram inspection (net::mux::inspect, src/net/udp_mux.cpp), which reads every datagram
// arriving on a shared port before any other check: it must never read outside the datagram, its ufrag must be a
// colon-free view inside it, and whenever the full STUN parser accepts a Binding request with a USERNAME, the
// mux must route it by the same ufrag (differential check against src/stun).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "net/udp_mux.hpp"
#include "stun/stun.hpp"

using namespace rtcpeer;

namespace {
void check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const ByteView d(data, size);
  const auto i = net::mux::inspect(d);
  using Kind = net::mux::Inspection::Kind;
  if (!i.ufrag.empty()) {
    check(i.kind == Kind::Request && i.binding);
    const auto* p = reinterpret_cast<const std::uint8_t*>(i.ufrag.data());
    check(p >= data && p + i.ufrag.size() <= data + size);
    check(i.ufrag.find(':') == std::string_view::npos);
  }
  if (auto m = stun::parse(d)) {
    check(i.kind != Kind::Other);
    if (m->is(stun::Method::Binding, stun::Class::Request)) {
      check(i.kind == Kind::Request && i.binding);
      if (auto user = m->username()) check(i.ufrag == user->substr(0, user->find(':')));
    }
  }
  return 0;
}
