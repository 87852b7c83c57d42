// Thin C++ helpers over the GDNative C API of gdnative.hpp: the API tables Godot handed us at load time, typed
// access to the core functions we use, and RAII owners for the Godot values we create (strings, variants).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "gdnative.hpp"

namespace rtcpeer_godot {

struct Api {
  static const godot_gdnative_core_api_struct* core;
  static const godot_gdnative_ext_nativescript_api_struct* nativescript;
  static const godot_gdnative_ext_net_3_2_api_struct* net;
  static godot_gdnative_api_version netVersion;  // the highest net extension version Godot offers (3.2 or 3.4)
  static godot_object* library;                  // the GDNativeLibrary resource that loaded us
};

template <class F>
F coreFn(CoreFn which) {
  return reinterpret_cast<F>(Api::core->fn[static_cast<int>(which)]);
}

/// Owns one godot_variant.
class Variant {
 public:
  Variant();
  explicit Variant(bool value);
  explicit Variant(std::int64_t value);
  explicit Variant(std::string_view utf8);
  /// A variant holding `object` (a Reference gains one reference for the variant's lifetime).
  static Variant object(godot_object* object);
  ~Variant();
  Variant(Variant&& other) noexcept;
  Variant(const Variant&) = delete;
  Variant& operator=(const Variant&) = delete;
  Variant& operator=(Variant&&) = delete;

  godot_variant* get() { return &value_; }
  const godot_variant* get() const { return &value_; }
  /// Adopts a variant Godot returned to us (we now destroy it).
  static Variant adopt(const godot_variant& raw);

 private:
  godot_variant value_;
};

/// The UTF-8 bytes of a Godot string.
std::string toStdString(const godot_string& s);
/// JSON text of a Godot Dictionary (Godot's own JSON.print), for rtcpeer's fromJson parsers.
std::string dictionaryToJson(const godot_dictionary* dictionary);

/// Calls Class.method on `object` with the given arguments; returns the result.
Variant callMethod(godot_method_bind* method, godot_object* object, const godot_variant* const* args, int count);
godot_method_bind* methodBind(const char* class_name, const char* method);
godot_object* construct(const char* class_name);

/// Godot's error / plain output (shows up on stderr / stdout of the engine).
void printError(const std::string& message, const char* function, const char* file, int line);
void printLine(std::string_view message);

#define RTCPEER_GODOT_ERROR(msg) ::rtcpeer_godot::printError((msg), __func__, __FILE__, __LINE__)

}  // namespace rtcpeer_godot
