// The routing key of a prompt, for a load balancer with prefix affinity.
//
// Replicas each keep their own prefix cache, so a prompt is cheapest on the
// replica that last saw its beginning. Every completion answers with an
// `X-Osprey-Prefix-Key` header: a hash of the prompt's first KV blocks, the
// unit the prefix cache shares. A proxy that sticks that key to the replica
// which answered (deploy/haproxy) sends later requests carrying it (the next
// turn of a chat, whose beginning is unchanged) to the same replica. A client
// may also send its own key, such as a session id; it is echoed unchanged.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace osprey::server {

inline constexpr const char* kPrefixKeyHeader = "X-Osprey-Prefix-Key";

// The hash of the first `blocks` whole blocks of `prompt` (all of it when it
// is shorter than one block), as "p" and 16 hex digits.
std::string prefix_key(std::span<const int32_t> prompt, int64_t block_size, int64_t blocks);

// A key a client sent, when it is one a proxy can carry: 1 to 128 characters
// of letters, digits and "-_.:". Anything else is ignored (nullopt).
std::optional<std::string> client_prefix_key(const std::string* header);

}  // namespace osprey::server
