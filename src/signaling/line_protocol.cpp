// Godot 3.x webrtc_signaling line protocol <-> Message (line_protocol.hpp).
#include "signaling/line_protocol.hpp"

#include <charconv>

namespace rtcpeer::signaling {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

std::string line(char type, std::int64_t id, std::string_view payload = {}) {
  std::string out;
  out.reserve(16 + payload.size());
  out += type;
  out += ": ";
  out += std::to_string(id);
  out += '\n';
  out += payload;
  return out;
}

}  // namespace

Dialect detectDialect(std::string_view frame) {
  // A 3.x command starts "<T>: " with T one of the client's commands; anything else is left to the JSON parser
  // (whose error then names the problem, as before this dialect existed).
  const bool command = frame.size() >= 3 && std::string_view("JSOAC").find(frame[0]) != std::string_view::npos &&
                       frame[1] == ':' && frame[2] == ' ';
  return command ? Dialect::Lines : Dialect::Json;
}

Result<Message> parseLine(std::string_view frame) {
  // ws_webrtc_server.gd: split once at '\n' (there must be one), a header of at least 3 bytes "<T>: ".
  const auto nl = frame.find('\n');
  if (nl == std::string_view::npos) return fail("Invalid message format: no newline after the command");
  const std::string_view header = frame.substr(0, nl);
  const std::string_view payload = frame.substr(nl + 1);
  if (header.size() < 3 || header[1] != ':' || header[2] != ' ') return fail("Invalid message format");
  const std::string_view arg = trim(header.substr(3));
  Message m;
  switch (header[0]) {
    case 'J':
      m.type = MessageType::Join;
      m.id = 0;  // 3.x lobbies are meshes
      m.data = std::string(arg);
      return m;
    case 'S':
      m.type = MessageType::Seal;
      return m;
    case 'O': m.type = MessageType::Offer; break;
    case 'A': m.type = MessageType::Answer; break;
    case 'C': m.type = MessageType::Candidate; break;
    default: return fail("Invalid command");
  }
  std::int64_t dest = -1;
  const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), dest);
  if (ec != std::errc() || end != arg.data() + arg.size() || arg.empty() || dest < 0 || dest > kMaxPeerId)
    return fail("Invalid destination");
  m.id = dest;
  // The JSON protocol's candidate payload starts with its own "\n" ("\n" mid "\n" index "\n" candidate).
  m.data = m.type == MessageType::Candidate ? "\n" + std::string(payload) : std::string(payload);
  return m;
}

std::string serializeLine(const Message& m) {
  switch (m.type) {
    case MessageType::Join: return "J: " + m.data + "\n";
    case MessageType::Id: return line('I', m.id);
    case MessageType::PeerConnect: return line('N', m.id);
    case MessageType::PeerDisconnect: return line('D', m.id);
    case MessageType::Offer: return line('O', m.id, m.data);
    case MessageType::Answer: return line('A', m.id, m.data);
    case MessageType::Candidate: {
      std::string_view data = m.data;
      if (!data.empty() && data.front() == '\n') data.remove_prefix(1);
      return line('C', m.id, data);
    }
    case MessageType::Seal: return "S: \n";
  }
  return {};
}

}  // namespace rtcpeer::signaling
