// Fuzzes the SDP parser, the remote-description checks and answer generation. Invariant: an answer we
// generate for any accepted offer parses back with the same number of m-lines.
#include "sdp/sdp.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace rtcpeer::sdp;
  auto parsed = parse(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!parsed) return 0;
  (void)checkRemote(*parsed, true);
  (void)checkRemote(*parsed, false);
  LocalParams params;
  params.iceUfrag = "fuzz";
  params.icePwd = "0123456789012345678901";
  params.fingerprint = {"sha-256", "AB:CD"};
  params.setup = Setup::Active;
  auto answer = generateAnswer(*parsed, params);
  if (!answer) return 0;
  auto reparsed = parse(*answer);
  if (!reparsed || reparsed->media.size() != parsed->media.size() || !checkRemote(*reparsed, false)) std::abort();
  return 0;
}
