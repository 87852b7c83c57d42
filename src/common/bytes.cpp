#include "common/bytes.hpp"

#include <string>

namespace rtcpeer {

std::string toHex(ByteView b, char sep, bool upper) {
  static constexpr char kUpper[] = "0123456789ABCDEF";
  static constexpr char kLower[] = "0123456789abcdef";
  const char* digits = upper ? kUpper : kLower;
  std::string s;
  s.reserve(b.size() * (sep ? 3 : 2));
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (sep && i) s.push_back(sep);
    s.push_back(digits[b[i] >> 4]);
    s.push_back(digits[b[i] & 15]);
  }
  return s;
}

}  // namespace rtcpeer
