// The GDNative entry points of the rtcpeer Godot plugin: godot_gdnative_init finds the API tables (core, NativeScript,
// net 3.2 / 3.4), godot_gdnative_singleton makes rtcpeer Godot's default WebRTC implementation, and
// godot_nativescript_init registers the two script classes whose instances own the native objects. Also the
// GDNative procedures a script can call with GDNative.call_native("standard_varcall", ...): rtcpeer_version and
// rtcpeer_live_objects.
#include <string>

#include "bindings.hpp"
#include "rtcpeer/version.hpp"

#define RTCPEER_GODOT_EXPORT extern "C" __attribute__((visibility("default")))

namespace rtcpeer_godot {
namespace {

bool g_registered = false;

// One NativeScript resource per class, made on first use (NativeScriptLanguage is not ready while singletons
// load) and kept for the life of the process; each holds a reference to our GDNativeLibrary.
Variant* g_scripts[2] = {nullptr, nullptr};

Variant* scriptFor(const char* script_class) {
  const int slot = std::string_view(script_class) == kPeerConnectionScriptClass ? 0 : 1;
  if (g_scripts[slot]) return g_scripts[slot];
  godot_object* script = construct("NativeScript");
  if (!script) return nullptr;
  auto* holder = new Variant(Variant::object(script));
  Variant library = Variant::object(Api::library);
  const godot_variant* libraryArg[] = {library.get()};
  callMethod(methodBind("NativeScript", "set_library"), script, libraryArg, 1);
  Variant name{std::string_view(script_class)};
  const godot_variant* nameArg[] = {name.get()};
  callMethod(methodBind("NativeScript", "set_class_name"), script, nameArg, 1);
  g_scripts[slot] = holder;
  return holder;
}

void* createPeerConnection(godot_object* instance, void*) { return new PeerConnectionBinding(instance); }
void destroyPeerConnection(godot_object*, void*, void* user_data) {
  delete static_cast<PeerConnectionBinding*>(user_data);
}
void* createDataChannel(godot_object* instance, void*) { return new DataChannelBinding(instance); }
void destroyDataChannel(godot_object*, void*, void* user_data) { delete static_cast<DataChannelBinding*>(user_data); }

std::string versionText() {
  return std::string("rtcpeer ") + rtcpeer::versionString() + " (GDNative net " +
         std::to_string(Api::netVersion.major) + "." + std::to_string(Api::netVersion.minor) + ")";
}

godot_variant versionMethod(godot_object*, void*, void*, int, godot_variant**) {
  Variant v{std::string_view(versionText())};
  godot_variant out;
  coreFn<void (*)(godot_variant*, const godot_variant*)>(CoreFn::variant_new_copy)(&out, v.get());
  return out;
}

godot_error createPeerConnectionObject(godot_object* object) {
  auto* binding = static_cast<PeerConnectionBinding*>(attachScript(object, kPeerConnectionScriptClass));
  if (!binding) {
    RTCPEER_GODOT_ERROR("rtcpeer: could not attach the peer connection script");
    return static_cast<godot_error>(rtcpeer::Error::Failed);
  }
  Api::net->bind_webrtc_peer_connection(object, &binding->iface);
  return 0;
}

void unregistered() { g_registered = false; }

const godot_net_webrtc_library kLibrary = {{3, 2}, &unregistered, &createPeerConnectionObject, nullptr};

}  // namespace

void* attachScript(godot_object* object, const char* script_class) {
  Variant* script = scriptFor(script_class);
  if (!script) return nullptr;
  static godot_method_bind* setScript = methodBind("Object", "set_script");
  const godot_variant* args[] = {script->get()};
  callMethod(setScript, object, args, 1);
  return Api::nativescript->get_userdata(object);
}

}  // namespace rtcpeer_godot

using namespace rtcpeer_godot;

RTCPEER_GODOT_EXPORT void godot_gdnative_init(godot_gdnative_init_options* options) {
  Api::core = options->api_struct;
  if (!Api::library) Api::library = options->gd_native_library;
  for (unsigned i = 0; i < Api::core->num_extensions; ++i) {
    const godot_gdnative_api_struct* ext = Api::core->extensions[i];
    if (ext->type == kApiNativeScript) {
      Api::nativescript = reinterpret_cast<const godot_gdnative_ext_nativescript_api_struct*>(ext);
    } else if (ext->type == kApiNet) {
      // 3.1 (stream/packet/multiplayer peers) -> 3.2 (WebRTC) -> 3.4 (same functions; the data-channel interface
      // gains get_buffered_amount): remember the 3.2 table and the highest version offered.
      for (const godot_gdnative_api_struct* v = ext; v; v = v->next) {
        if (v->version.major == 3 && v->version.minor == 2)
          Api::net = reinterpret_cast<const godot_gdnative_ext_net_3_2_api_struct*>(v);
        if (v->version.major > Api::netVersion.major ||
            (v->version.major == Api::netVersion.major && v->version.minor > Api::netVersion.minor))
          Api::netVersion = v->version;
      }
    }
  }
}

RTCPEER_GODOT_EXPORT void godot_gdnative_terminate(godot_gdnative_terminate_options*) {
  if (g_registered && Api::net) Api::net->set_webrtc_library(nullptr);
  g_registered = false;
  // Our references to the two NativeScript resources (objects still using them keep their own).
  for (Variant*& script : g_scripts) {
    delete script;
    script = nullptr;
  }
}

RTCPEER_GODOT_EXPORT void godot_gdnative_singleton() {
  if (!Api::net || !Api::nativescript) {
    RTCPEER_GODOT_ERROR("rtcpeer: this Godot has no GDNative WebRTC interface (net extension 3.2) or NativeScript");
    return;
  }
  if (Api::net->set_webrtc_library(&kLibrary) == 0) g_registered = true;
}

RTCPEER_GODOT_EXPORT void godot_nativescript_init(void* handle) {
  if (!Api::nativescript) return;
  Api::nativescript->register_class(handle, kPeerConnectionScriptClass, "WebRTCPeerConnectionGDNative",
                                    {&createPeerConnection, nullptr, nullptr},
                                    {&destroyPeerConnection, nullptr, nullptr});
  Api::nativescript->register_class(handle, kDataChannelScriptClass, "WebRTCDataChannelGDNative",
                                    {&createDataChannel, nullptr, nullptr}, {&destroyDataChannel, nullptr, nullptr});
  for (const char* cls : {kPeerConnectionScriptClass, kDataChannelScriptClass})
    Api::nativescript->register_method(handle, cls, "rtcpeer_version", {0}, {&versionMethod, nullptr, nullptr});
}

// GDNative.call_native("standard_varcall", "rtcpeer_version", []) -> "rtcpeer 0.1.0 (GDNative net 3.2)".
RTCPEER_GODOT_EXPORT godot_variant rtcpeer_version(godot_array*) { return versionMethod(nullptr, nullptr, nullptr, 0, nullptr); }

// GDNative.call_native("standard_varcall", "rtcpeer_live_objects", []) -> [peer connections, data channels] alive.
RTCPEER_GODOT_EXPORT godot_variant rtcpeer_live_objects(godot_array*) {
  godot_variant out;
  std::string text = std::to_string(LiveCounts::peerConnections) + " " + std::to_string(LiveCounts::dataChannels);
  Variant v{std::string_view(text)};
  coreFn<void (*)(godot_variant*, const godot_variant*)>(CoreFn::variant_new_copy)(&out, v.get());
  return out;
}
