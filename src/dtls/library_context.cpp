// The OpenSSL library context the DTLS endpoints' SSL_CTX lives in: OpenSSL's own default provider, seen through a
// thin pass-through provider that lists only the key decoders and key managers DTLS peers' certificates and our
// groups need. Every algorithm still runs in OpenSSL's default provider; only the catalogue is shorter.
//
// Why: OpenSSL 3.0 parses the peer's certificate in every handshake, and decoding its public key builds a decoder
// context by walking every key manager and every decoder of the library context (OSSL_DECODER_CTX_new_for_pkey,
// no cache before 3.1). With the default provider's ~80 decoders that took ~115 us of a ~120 us d2i_X509, the
// largest single cost of a server's new connection (docs/BENCHMARKS.md, "Scale"). Through this catalogue (a
// dozen DER decoders, six key managers) the same parse takes ~35 us.
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include <strings.h>

#include <cstring>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "dtls/endpoint_impl.hpp"

namespace rtcpeer::dtls::detail {

namespace {

// Key types a WebRTC peer's certificate may carry (ECDSA from every browser; RSA from older or configured stacks;
// EdDSA from Pion when asked), and X25519, our first ECDHE group (P-256 is "EC").
constexpr std::string_view kKeyTypes[] = {"EC", "RSA", "RSA-PSS", "ED25519", "ED448", "X25519"};

bool namesWantedKeyType(const char* names) {
  for (std::string_view rest = names != nullptr ? names : ""; !rest.empty();) {
    const auto colon = rest.find(':');
    const std::string_view name = rest.substr(0, colon);
    for (std::string_view want : kKeyTypes)
      if (name.size() == want.size() && strncasecmp(name.data(), want.data(), name.size()) == 0) return true;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return false;
}

struct Catalogue {
  OSSL_PROVIDER* inner = nullptr;                  // OpenSSL's default provider, in a library context of its own
  std::vector<OSSL_ALGORITHM> decoders, keymgmts;  // each ends with an all-null entry; read-only once built
};

Catalogue& catalogue() {
  static Catalogue c;
  return c;
}

// Built once, before the provider is loaded, so that queries from any thread only read.
std::vector<OSSL_ALGORITHM> filtered(int operation, bool derOnly) {
  int noCache = 0;
  std::vector<OSSL_ALGORITHM> out;
  for (const OSSL_ALGORITHM* a = OSSL_PROVIDER_query_operation(catalogue().inner, operation, &noCache);
       a != nullptr && a->algorithm_names != nullptr; ++a)
    if (namesWantedKeyType(a->algorithm_names) &&
        (!derOnly || (a->property_definition != nullptr && std::strstr(a->property_definition, "input=der"))))
      out.push_back(*a);
  out.push_back(OSSL_ALGORITHM{nullptr, nullptr, nullptr, nullptr});
  return out;
}

const OSSL_ALGORITHM* queryOperation(void*, int operation, int* noCache) {
  Catalogue& c = catalogue();
  if (operation == OSSL_OP_DECODER || operation == OSSL_OP_KEYMGMT) {
    *noCache = 0;
    return (operation == OSSL_OP_DECODER ? c.decoders : c.keymgmts).data();
  }
  return OSSL_PROVIDER_query_operation(c.inner, operation, noCache);
}

void unqueryOperation(void*, int operation, const OSSL_ALGORITHM* algorithms) {
  if (operation != OSSL_OP_DECODER && operation != OSSL_OP_KEYMGMT)
    OSSL_PROVIDER_unquery_operation(catalogue().inner, operation, algorithms);
}

// libssl learns the TLS groups from the providers' "TLS-GROUP" capability.
int getCapabilities(void*, const char* capability, OSSL_CALLBACK* cb, void* arg) {
  return OSSL_PROVIDER_get_capabilities(catalogue().inner, capability, cb, arg);
}

const OSSL_PARAM* gettableParams(void*) { return OSSL_PROVIDER_gettable_params(catalogue().inner); }
int getParams(void*, OSSL_PARAM params[]) { return OSSL_PROVIDER_get_params(catalogue().inner, params); }

template <typename F>
void (*asFunction(F* f))() {
  return reinterpret_cast<void (*)()>(f);
}

int providerInit(const OSSL_CORE_HANDLE*, const OSSL_DISPATCH*, const OSSL_DISPATCH** out, void** provctx) {
  static const OSSL_DISPATCH dispatch[] = {
      {OSSL_FUNC_PROVIDER_QUERY_OPERATION, asFunction(queryOperation)},
      {OSSL_FUNC_PROVIDER_UNQUERY_OPERATION, asFunction(unqueryOperation)},
      {OSSL_FUNC_PROVIDER_GET_CAPABILITIES, asFunction(getCapabilities)},
      {OSSL_FUNC_PROVIDER_GETTABLE_PARAMS, asFunction(gettableParams)},
      {OSSL_FUNC_PROVIDER_GET_PARAMS, asFunction(getParams)},
      {0, nullptr},
  };
  *out = dispatch;
  // The default provider's algorithms get the default provider's own context, as if it had been queried directly.
  *provctx = OSSL_PROVIDER_get0_provider_ctx(catalogue().inner);
  return 1;
}

OSSL_LIB_CTX* build() {
  OSSL_LIB_CTX* innerContext = OSSL_LIB_CTX_new();
  Catalogue& c = catalogue();
  c.inner = innerContext != nullptr ? OSSL_PROVIDER_load(innerContext, "default") : nullptr;
  if (c.inner == nullptr) return nullptr;
  c.decoders = filtered(OSSL_OP_DECODER, true);
  c.keymgmts = filtered(OSSL_OP_KEYMGMT, false);
  if (c.decoders.size() < 2 || c.keymgmts.size() < 2) return nullptr;
  OSSL_LIB_CTX* context = OSSL_LIB_CTX_new();
  if (context == nullptr || OSSL_PROVIDER_add_builtin(context, "rtcpeer-dtls", providerInit) != 1 ||
      OSSL_PROVIDER_load(context, "rtcpeer-dtls") == nullptr) {
    OSSL_LIB_CTX_free(context);
    return nullptr;
  }
  return context;
}

}  // namespace

// Never freed, like the SSL_CTX in it. Null (OpenSSL's default context) if it cannot be built.
OSSL_LIB_CTX* libraryContext() {
  static OSSL_LIB_CTX* const context = [] {
    OSSL_LIB_CTX* built = build();
    if (built == nullptr) {
      RTCPEER_LOG(Warning, "dtls", "using OpenSSL's default library context: the DTLS catalogue failed to load");
      ERR_clear_error();
    }
    return built;
  }();
  return context;
}

}  // namespace rtcpeer::dtls::detail
