// Definitions of the GDNative helpers (godot_api.hpp): typed calls into Godot's core API table.
#include "godot_api.hpp"

#include <utility>

namespace rtcpeer_godot {

const godot_gdnative_core_api_struct* Api::core = nullptr;
const godot_gdnative_ext_nativescript_api_struct* Api::nativescript = nullptr;
const godot_gdnative_ext_net_3_2_api_struct* Api::net = nullptr;
godot_gdnative_api_version Api::netVersion{0, 0};
godot_object* Api::library = nullptr;

namespace {
godot_string makeString(std::string_view utf8) {
  auto fromUtf8 = coreFn<godot_string (*)(const char*, godot_int)>(CoreFn::string_chars_to_utf8_with_len);
  return fromUtf8(utf8.data(), static_cast<godot_int>(utf8.size()));
}
void destroyString(godot_string& s) { coreFn<void (*)(godot_string*)>(CoreFn::string_destroy)(&s); }
}  // namespace

Variant::Variant() { coreFn<void (*)(godot_variant*)>(CoreFn::variant_new_nil)(&value_); }

Variant::Variant(bool value) { coreFn<void (*)(godot_variant*, godot_bool)>(CoreFn::variant_new_bool)(&value_, value); }

Variant::Variant(std::int64_t value) {
  coreFn<void (*)(godot_variant*, std::int64_t)>(CoreFn::variant_new_int)(&value_, value);
}

Variant::Variant(std::string_view utf8) {
  godot_string s = makeString(utf8);
  coreFn<void (*)(godot_variant*, const godot_string*)>(CoreFn::variant_new_string)(&value_, &s);
  destroyString(s);
}

Variant Variant::object(godot_object* object) {
  Variant v;
  coreFn<void (*)(godot_variant*)>(CoreFn::variant_destroy)(&v.value_);
  coreFn<void (*)(godot_variant*, const godot_object*)>(CoreFn::variant_new_object)(&v.value_, object);
  return v;
}

Variant Variant::adopt(const godot_variant& raw) {
  Variant v;
  coreFn<void (*)(godot_variant*)>(CoreFn::variant_destroy)(&v.value_);
  v.value_ = raw;
  return v;
}

Variant::Variant(Variant&& other) noexcept : value_(other.value_) {
  coreFn<void (*)(godot_variant*)>(CoreFn::variant_new_nil)(&other.value_);
}

Variant::~Variant() { coreFn<void (*)(godot_variant*)>(CoreFn::variant_destroy)(&value_); }

std::string toStdString(const godot_string& s) {
  godot_char_string utf8 = coreFn<godot_char_string (*)(const godot_string*)>(CoreFn::string_utf8)(&s);
  const char* data = coreFn<const char* (*)(const godot_char_string*)>(CoreFn::char_string_get_data)(&utf8);
  godot_int length = coreFn<godot_int (*)(const godot_char_string*)>(CoreFn::char_string_length)(&utf8);
  std::string out(data ? data : "", data && length > 0 ? static_cast<std::size_t>(length) : 0);
  coreFn<void (*)(godot_char_string*)>(CoreFn::char_string_destroy)(&utf8);
  return out;
}

std::string dictionaryToJson(const godot_dictionary* dictionary) {
  if (!dictionary) return "{}";
  godot_string json =
      coreFn<godot_string (*)(const godot_dictionary*)>(CoreFn::dictionary_to_json)(dictionary);
  std::string out = toStdString(json);
  destroyString(json);
  return out;
}

Variant callMethod(godot_method_bind* method, godot_object* object, const godot_variant* const* args, int count) {
  godot_variant_call_error error{};
  using Call = godot_variant (*)(godot_method_bind*, godot_object*, const godot_variant* const*, int,
                                 godot_variant_call_error*);
  godot_variant result = coreFn<Call>(CoreFn::method_bind_call)(method, object, args, count, &error);
  return Variant::adopt(result);
}

godot_method_bind* methodBind(const char* class_name, const char* method) {
  return coreFn<godot_method_bind* (*)(const char*, const char*)>(CoreFn::method_bind_get_method)(class_name,
                                                                                                   method);
}

godot_object* construct(const char* class_name) {
  using Constructor = godot_object* (*)();
  auto ctor = coreFn<Constructor (*)(const char*)>(CoreFn::get_class_constructor)(class_name);
  return ctor ? ctor() : nullptr;
}

void printError(const std::string& message, const char* function, const char* file, int line) {
  coreFn<void (*)(const char*, const char*, const char*, int)>(CoreFn::print_error)(message.c_str(), function, file,
                                                                                     line);
}

void printLine(std::string_view message) {
  godot_string s = makeString(message);
  coreFn<void (*)(const godot_string*)>(CoreFn::print)(&s);
  destroyString(s);
}

}  // namespace rtcpeer_godot
