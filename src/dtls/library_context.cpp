// The OpenSSL library context the DTLS endpoints' SSL_CTX lives in: OpenSSL's own default provider, seen through a
// thin pass-through provider whose catalogue lists only what a DTLS 1.2 handshake under our policy uses (key types,
// signatures, key exchanges, AEADs, digests, the TLS PRF). Every algorithm still runs in OpenSSL's default
// provider; only the catalogue is shorter.
//
// Why: OpenSSL 3.0 parses the peer's certificate in every handshake, and decoding its public key builds a decoder
// context by walking every key manager and every decoder of the library context and the whole method store
// (OSSL_DECODER_CTX_new_for_pkey, no cache before 3.1). With the default provider's catalogue (~80 decoders, and
// every cipher and digest SSL_CTX_new fetches) a d2i_X509 of a P-256 certificate took ~120 us, the largest single
// cost of a server's new connection (docs/BENCHMARKS.md, "Scale"); through this catalogue it takes ~35 us.
#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/err.h>
#include <openssl/provider.h>

#include <strings.h>

#include <cstring>
#include <iterator>
#include <string_view>
#include <vector>

#include "common/log.hpp"
#include "dtls/endpoint_impl.hpp"

namespace rtcpeer::dtls::detail {

namespace {

// What a DTLS 1.2 handshake under our policy (src/dtls/README.md) uses, per operation; operations not listed pass
// through whole. Key types: a WebRTC peer's certificate carries ECDSA (every browser), RSA (older or configured
// stacks) or EdDSA (Pion when asked); X25519 is our first ECDHE group (P-256 is "EC"). Fewer methods also keep the
// context's method store small, which OpenSSL 3.0 walks whole whenever it lists key managers (every certificate
// parse does).
struct Allowed {
  int operation;
  std::string_view names[8];
};
constexpr Allowed kAllowed[] = {
    {OSSL_OP_KEYMGMT, {"EC", "RSA", "RSA-PSS", "ED25519", "ED448", "X25519"}},
    {OSSL_OP_DECODER, {"EC", "RSA", "RSA-PSS", "ED25519", "ED448", "X25519"}},  // DER input only, below
    {OSSL_OP_SIGNATURE, {"ECDSA", "RSA", "ED25519", "ED448"}},
    {OSSL_OP_KEYEXCH, {"ECDH", "X25519"}},
    {OSSL_OP_CIPHER, {"AES-128-GCM", "AES-256-GCM", "ChaCha20-Poly1305"}},
    {OSSL_OP_DIGEST, {"MD5", "SHA1", "SHA2-224", "SHA2-256", "SHA2-384", "SHA2-512", "MD5-SHA1"}},
    {OSSL_OP_MAC, {"HMAC"}},
    {OSSL_OP_KDF, {"TLS1-PRF", "HKDF", "TLS13-KDF"}},
};

const Allowed* allowedFor(int operation) {
  for (const Allowed& a : kAllowed)
    if (a.operation == operation) return &a;
  return nullptr;
}

// Whether one of the algorithm's names ("SHA2-256:SHA-256:SHA256:2.16...") is allowed.
bool allowed(const Allowed& allow, const char* names) {
  for (std::string_view rest = names != nullptr ? names : ""; !rest.empty();) {
    const auto colon = rest.find(':');
    const std::string_view name = rest.substr(0, colon);
    for (std::string_view want : allow.names)
      if (!want.empty() && name.size() == want.size() && strncasecmp(name.data(), want.data(), name.size()) == 0)
        return true;
    if (colon == std::string_view::npos) break;
    rest.remove_prefix(colon + 1);
  }
  return false;
}

struct Catalogue {
  OSSL_PROVIDER* inner = nullptr;  // OpenSSL's default provider, in a library context of its own
  // Per entry of kAllowed, its algorithms, ending with an all-null entry; read-only once built.
  std::vector<OSSL_ALGORITHM> lists[std::size(kAllowed)];
};

Catalogue& catalogue() {
  static Catalogue c;
  return c;
}

// Built once, before the provider is loaded, so that queries from any thread only read.
std::vector<OSSL_ALGORITHM> filtered(const Allowed& allow) {
  int noCache = 0;
  std::vector<OSSL_ALGORITHM> out;
  for (const OSSL_ALGORITHM* a = OSSL_PROVIDER_query_operation(catalogue().inner, allow.operation, &noCache);
       a != nullptr && a->algorithm_names != nullptr; ++a)
    if (allowed(allow, a->algorithm_names) &&
        (allow.operation != OSSL_OP_DECODER ||
         (a->property_definition != nullptr && std::strstr(a->property_definition, "input=der"))))
      out.push_back(*a);
  out.push_back(OSSL_ALGORITHM{nullptr, nullptr, nullptr, nullptr});
  return out;
}

const OSSL_ALGORITHM* queryOperation(void*, int operation, int* noCache) {
  Catalogue& c = catalogue();
  if (const Allowed* allow = allowedFor(operation)) {
    *noCache = 0;
    return c.lists[static_cast<std::size_t>(allow - kAllowed)].data();
  }
  return OSSL_PROVIDER_query_operation(c.inner, operation, noCache);
}

void unqueryOperation(void*, int operation, const OSSL_ALGORITHM* algorithms) {
  if (allowedFor(operation) == nullptr)
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
  for (std::size_t i = 0; i < std::size(kAllowed); ++i) {
    c.lists[i] = filtered(kAllowed[i]);
    if (c.lists[i].size() < 2) return nullptr;  // not OpenSSL's default provider as we know it
  }
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
