#include "signaling/protocol.hpp"

#include <charconv>
#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace rtcpeer::signaling {
namespace {

using json = nlohmann::json;

// A SAX consumer that accepts exactly one flat object of scalars. Refusing nesting at the first bracket keeps
// parsing O(frame size) in time and memory whatever the frame holds (no DOM is ever built).
class FlatMessageReader {
 public:
  std::optional<std::int64_t> type, id;
  std::optional<std::string> data;
  std::string error;

  bool null() { return scalar(); }
  bool boolean(bool) { return scalar(); }
  bool number_integer(json::number_integer_t v) { return number(v < 0 || v > kMaxPeerId ? -1 : v); }
  bool number_unsigned(json::number_unsigned_t v) {
    return number(v > static_cast<std::uint64_t>(kMaxPeerId) ? -1 : static_cast<std::int64_t>(v));
  }
  bool number_float(json::number_float_t v, const json::string_t&) {
    // Godot's JSON.stringify writes whole numbers held in floats as "1.0"; accept those when integral.
    if (!std::isfinite(v) || std::floor(v) != v || v < 0 || v > double(kMaxPeerId)) return number(-1);
    return number(static_cast<std::int64_t>(v));
  }
  bool string(json::string_t& s) {
    if (!inValue()) return false;
    if (key_ == "data") {
      data = std::move(s);
      return true;
    }
    if (key_ == "type" || key_ == "id") return fail("\"" + key_ + "\" must be a number");
    return true;
  }
  bool binary(json::binary_t&) { return fail("binary values are not allowed"); }
  bool start_object(std::size_t) {
    if (depth_++ != 0) return fail("nested values are not allowed");
    started_ = true;
    return true;
  }
  bool key(json::string_t& k) {
    key_ = std::move(k);
    return true;
  }
  bool end_object() {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) { return fail(depth_ == 0 ? "not a JSON object" : "nested values are not allowed"); }
  bool end_array() { return true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) {
    return fail("not valid JSON");
  }

  bool sawObject() const { return depth_ == 0 && started_; }

 private:
  int depth_ = 0;
  bool started_ = false;
  std::string key_;

  bool fail(std::string why) {
    if (error.empty()) error = std::move(why);
    return false;
  }
  // Scalars are only valid as member values of the top-level object.
  bool inValue() {
    if (depth_ != 1) return fail("not a JSON object");
    return true;
  }
  bool scalar() {
    if (!inValue()) return false;
    if (key_ == "type" || key_ == "id") return fail("\"" + key_ + "\" must be a number");
    if (key_ == "data") return fail("\"data\" must be a string");
    return true;
  }
  bool number(std::int64_t integral) {
    if (!inValue()) return false;
    if (key_ != "type" && key_ != "id") {
      if (key_ == "data") return fail("\"data\" must be a string");
      return true;
    }
    if (integral < 0) return fail("\"" + key_ + "\" must be an integer from 0 to 2147483647");
    (key_ == "type" ? type : id) = integral;
    return true;
  }
};

}  // namespace

Result<Message> parseMessage(std::string_view text) {
  FlatMessageReader reader;
  const bool parsed = json::sax_parse(text.begin(), text.end(), &reader);
  if (!parsed || !reader.sawObject()) {
    return fail("Invalid message format: " + (reader.error.empty() ? std::string("not a JSON object") : reader.error));
  }
  if (!reader.type) return fail("Invalid message format: missing \"type\"");
  if (!reader.id) return fail("Invalid message format: missing \"id\"");
  if (*reader.type > static_cast<std::int64_t>(MessageType::Seal)) return fail("Invalid command");
  Message m;
  m.type = static_cast<MessageType>(*reader.type);
  m.id = *reader.id;
  m.data = reader.data ? std::move(*reader.data) : std::string();
  return m;
}

std::string serialize(const Message& m) {
  std::string out = "{\"type\":";
  out += std::to_string(static_cast<int>(m.type));
  out += ",\"id\":";
  out += std::to_string(m.id);
  out += ",\"data\":";
  out += json(m.data).dump(-1, ' ', false, json::error_handler_t::replace);
  out += '}';
  return out;
}

std::string encodeCandidate(std::string_view mid, int index, std::string_view candidate) {
  std::string out;
  out.reserve(mid.size() + candidate.size() + 16);
  out += '\n';
  out += mid;
  out += '\n';
  out += std::to_string(index);
  out += '\n';
  out += candidate;
  return out;
}

Result<CandidateData> decodeCandidate(std::string_view data) {
  std::vector<std::string_view> parts;
  while (!data.empty()) {
    const auto nl = data.find('\n');
    const auto part = data.substr(0, nl);
    if (!part.empty()) {
      if (parts.size() == 3) return fail("candidate payload has more than three fields");
      parts.push_back(part);
    }
    if (nl == std::string_view::npos) break;
    data.remove_prefix(nl + 1);
  }
  if (parts.size() != 3) return fail("candidate payload needs three fields (mid, index, candidate)");
  CandidateData c;
  const auto [end, ec] = std::from_chars(parts[1].data(), parts[1].data() + parts[1].size(), c.index);
  if (ec != std::errc() || end != parts[1].data() + parts[1].size()) return fail("candidate index is not an integer");
  c.mid = parts[0];
  c.candidate = parts[2];
  return c;
}

}  // namespace rtcpeer::signaling
