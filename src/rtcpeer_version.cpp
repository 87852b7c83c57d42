#include "rtcpeer/version.hpp"

namespace rtcpeer {

const char* versionString() noexcept { return RTCPEER_VERSION_STRING; }

}  // namespace rtcpeer
