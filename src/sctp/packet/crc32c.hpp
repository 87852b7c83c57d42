// CRC32c (Castagnoli), the SCTP checksum (RFC 9260 appendix A). Uses the SSE4.2 crc32 instruction when the CPU
// has it (checked once at run time) and a portable slicing-by-8 table otherwise.
#pragma once

#include <cstdint>

#include "common/bytes.hpp"

namespace rtcpeer::sctp {

/// The finished CRC32c of `data` (initial value ~0, final complement), as defined by RFC 3720 B.4.
std::uint32_t crc32c(ByteView data) noexcept;

/// Extends a finished CRC32c `crc` (of some prefix) over `data`: crc32cExtend(crc32c(a), b) == crc32c(a + b),
/// and crc32cExtend(0, a) == crc32c(a).
std::uint32_t crc32cExtend(std::uint32_t crc, ByteView data) noexcept;

/// The portable implementation, exposed so tests can check both paths against each other.
std::uint32_t crc32cPortable(ByteView data) noexcept;

/// True if crc32c() uses the hardware instruction on this CPU.
bool crc32cHardware() noexcept;

}  // namespace rtcpeer::sctp
