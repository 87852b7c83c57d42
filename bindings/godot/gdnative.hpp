// Our own declarations of the slice of Godot 3.x's GDNative C interface this plugin uses: the opaque value types,
// the API structs Godot hands to godot_gdnative_init (core 1.0, NativeScript 1.0, net 3.1 -> 3.2 -> 3.4), and the
// WebRTC interface structs of the net extension (godot-headers, tag godot-3.2.3-stable, net/godot_webrtc.h).
//
// Written from the documented layouts, not copied: Godot passes these structs by pointer and only their layout
// matters. The core API struct is a long table of function pointers; instead of declaring all 744 entries we
// declare it as an array and name the indices we call (CoreFn below). The indices are the entry's position in
// godot_gdnative_core_api_struct (version 1.0, frozen since Godot 3.1; 3.2, 3.3, 3.4 and 3.5 share it).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rtcpeer_godot {

extern "C" {

// ---- opaque value types (sizes from gdnative/*.h for 64-bit targets) -------------------------------------------
struct godot_string { alignas(8) std::uint8_t opaque[8]; };
struct godot_char_string { alignas(8) std::uint8_t opaque[8]; };
struct godot_array { alignas(8) std::uint8_t opaque[8]; };
struct godot_dictionary { alignas(8) std::uint8_t opaque[8]; };
struct godot_variant { alignas(8) std::uint8_t opaque[24]; };  // 16 + sizeof(int64_t)
using godot_object = void;
using godot_method_bind = void;
using godot_error = int;
using godot_int = int;  // 32-bit in Godot 3.x
using godot_bool = bool;

struct godot_variant_call_error {
  int error;  // 0 = CALL_OK
  int argument;
  int expected;
};

enum godot_variant_type_value : int { kVariantNil = 0, kVariantBool = 1, kVariantInt = 2, kVariantString = 4,
                                      kVariantObject = 17, kVariantDictionary = 18, kVariantArray = 19 };

// ---- API structs ---------------------------------------------------------------------------------------------------
struct godot_gdnative_api_version {
  unsigned int major;
  unsigned int minor;
};

struct godot_gdnative_api_struct {  // the common head of every API struct
  unsigned int type;
  godot_gdnative_api_version version;
  const godot_gdnative_api_struct* next;
};

enum godot_api_type : unsigned int { kApiCore = 0, kApiNativeScript = 1, kApiNet = 6 };

inline constexpr int kCoreApiEntries = 744;  // functions in core 1.0

struct godot_gdnative_core_api_struct {
  unsigned int type;
  godot_gdnative_api_version version;
  const godot_gdnative_api_struct* next;
  unsigned int num_extensions;
  const godot_gdnative_api_struct** extensions;
  void* fn[kCoreApiEntries];
};

struct godot_gdnative_init_options {
  godot_bool in_editor;
  std::uint64_t core_api_hash;
  std::uint64_t editor_api_hash;
  std::uint64_t no_api_hash;
  void (*report_version_mismatch)(const godot_object*, const char*, godot_gdnative_api_version,
                                  godot_gdnative_api_version);
  void (*report_loading_error)(const godot_object*, const char*);
  godot_object* gd_native_library;
  const godot_gdnative_core_api_struct* api_struct;
  const godot_string* active_library_path;
};

struct godot_gdnative_terminate_options {
  godot_bool in_editor;
};

// NativeScript 1.0
struct godot_instance_create_func {
  void* (*create_func)(godot_object* instance, void* method_data);
  void* method_data;
  void (*free_func)(void*);
};
struct godot_instance_destroy_func {
  void (*destroy_func)(godot_object* instance, void* method_data, void* user_data);
  void* method_data;
  void (*free_func)(void*);
};
struct godot_method_attributes {
  int rpc_type;  // GODOT_METHOD_RPC_MODE_DISABLED = 0
};
struct godot_instance_method {
  godot_variant (*method)(godot_object* instance, void* method_data, void* user_data, int num_args,
                          godot_variant** args);
  void* method_data;
  void (*free_func)(void*);
};

struct godot_gdnative_ext_nativescript_api_struct {
  unsigned int type;
  godot_gdnative_api_version version;
  const godot_gdnative_api_struct* next;
  void (*register_class)(void* handle, const char* name, const char* base, godot_instance_create_func create,
                         godot_instance_destroy_func destroy);
  void (*register_tool_class)(void* handle, const char* name, const char* base, godot_instance_create_func create,
                              godot_instance_destroy_func destroy);
  void (*register_method)(void* handle, const char* name, const char* function, godot_method_attributes attr,
                          godot_instance_method method);
  void* register_property;
  void* register_signal;
  void* (*get_userdata)(godot_object* instance);
};

// ---- net extension: WebRTC (3.2; 3.4 adds get_buffered_amount through the data channel's `next`) ----------------
struct godot_net_webrtc_library {
  godot_gdnative_api_version version;
  void (*unregistered)();
  godot_error (*create_peer_connection)(godot_object* obj);  // obj: a fresh WebRTCPeerConnectionGDNative
  void* next;
};

struct godot_net_webrtc_peer_connection {
  godot_gdnative_api_version version;
  godot_object* data;  // passed back as the first argument of every function
  godot_int (*get_connection_state)(const void*);
  godot_error (*initialize)(void*, const godot_dictionary*);
  godot_object* (*create_data_channel)(void*, const char* label, const godot_dictionary* options);
  godot_error (*create_offer)(void*);
  godot_error (*create_answer)(void*);  // never called by Godot
  godot_error (*set_remote_description)(void*, const char* type, const char* sdp);
  godot_error (*set_local_description)(void*, const char* type, const char* sdp);
  godot_error (*add_ice_candidate)(void*, const char* media, int index, const char* name);
  godot_error (*poll)(void*);
  void (*close)(void*);
  void* next;
};

struct godot_net_webrtc_data_channel {
  godot_gdnative_api_version version;
  godot_object* data;
  godot_error (*get_packet)(void*, const std::uint8_t** buffer, int* size);
  godot_error (*put_packet)(void*, const std::uint8_t* buffer, int size);
  godot_int (*get_available_packet_count)(const void*);
  godot_int (*get_max_packet_size)(const void*);
  void (*set_write_mode)(void*, godot_int);
  godot_int (*get_write_mode)(const void*);
  bool (*was_string_packet)(const void*);
  godot_int (*get_ready_state)(const void*);
  const char* (*get_label)(const void*);
  bool (*is_ordered)(const void*);
  int (*get_id)(const void*);
  int (*get_max_packet_life_time)(const void*);
  int (*get_max_retransmits)(const void*);
  const char* (*get_protocol)(const void*);
  bool (*is_negotiated)(const void*);
  godot_error (*poll)(void*);
  void (*close)(void*);
  void* next;  // -> godot_net_webrtc_data_channel_ext (read by Godot 3.4+)
};

struct godot_net_webrtc_data_channel_ext {
  int (*get_buffered_amount)(const void*);
  void* next;
};

// The net extension 3.2 struct (reached through the GDNATIVE_EXT_NET 3.1 struct's `next`).
struct godot_gdnative_ext_net_3_2_api_struct {
  unsigned int type;
  godot_gdnative_api_version version;
  const godot_gdnative_api_struct* next;
  godot_error (*set_webrtc_library)(const godot_net_webrtc_library*);
  void (*bind_webrtc_peer_connection)(godot_object*, const godot_net_webrtc_peer_connection*);
  void (*bind_webrtc_data_channel)(godot_object*, const godot_net_webrtc_data_channel*);
};

}  // extern "C"

// Positions in godot_gdnative_core_api_struct::fn of the core 1.0 functions we call.
enum class CoreFn : int {
  array_get = 333,
  array_size = 356,
  array_destroy = 361,
  dictionary_new = 362,
  dictionary_destroy = 364,
  dictionary_set = 375,
  dictionary_to_json = 380,
  variant_get_type = 507,
  variant_new_copy = 508,
  variant_new_nil = 509,
  variant_new_bool = 510,
  variant_new_int = 512,
  variant_new_string = 514,
  variant_new_object = 527,
  variant_new_dictionary = 528,
  variant_as_bool = 537,
  variant_as_int = 539,
  variant_as_string = 541,
  variant_as_object = 554,
  variant_destroy = 570,
  char_string_length = 571,
  char_string_get_data = 572,
  char_string_destroy = 573,
  string_utf8 = 678,
  string_chars_to_utf8_with_len = 682,
  string_destroy = 721,
  method_bind_get_method = 732,
  method_bind_call = 734,
  get_class_constructor = 735,
  print_error = 741,
  print_warning = 742,
  print = 743,
};

}  // namespace rtcpeer_godot
