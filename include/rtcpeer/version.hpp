#pragma once

namespace rtcpeer {

/// The library's version, "MAJOR.MINOR.PATCH".
const char* versionString() noexcept;

}  // namespace rtcpeer
