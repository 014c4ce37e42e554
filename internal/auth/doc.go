// Package auth authenticates callers of nird by bearer token and authorizes what they may do.
//
// # Model
//
// A caller presents a bearer token (the HTTP "Authorization: Bearer <token>" header for Connect
// and plain HTTP routes, the same header on a NATS request to nir.cmd.append.<case system>).
// The token maps to a [Principal]: a name, a [Role] and, for the kommune role, a kommunenummer.
// Which roles may call which procedure is data, a [Policy] table keyed by Connect procedure
// name ("/pkg.Service/Method", also usable for plain HTTP paths). Which persons and kommuner a
// principal may see and write once its role may call a procedure is decided by package
// internal/access, from the person's history, at every edge; this package only says who the
// caller is and which procedures its role may call.
//
// The roles follow DESIGN.md "Services and security":
//
//   - kommune: a kommune's case system (fagsystem) or caseworker tool. Reads and writes its own
//     kommune's persons (internal/access: the person lives there, or lived there for its own
//     period).
//   - analyst: statistics and pseudonymous data; never national ids, never writes.
//   - operator: status, rebuild and other administration; no person data. It may append only
//     the merge of two persons found to be one, and its retraction (internal/access).
//   - system: nird's own regelmotor, which appends computed terminations for any kommune.
//
// # Token storage
//
// The token file (see [LoadFile]) holds only the SHA-256 of each token, never the token. A
// password hash that is slow on purpose (bcrypt, argon2) exists to make guessing a low-entropy
// human password expensive; nird's tokens are 32 random bytes from crypto/rand ([GenerateToken]),
// so there is nothing to guess: a preimage or brute-force attack on 256 bits is out of reach
// whatever the hash speed. A fast hash keeps per-request authentication in the microseconds,
// where bcrypt would cost tens of milliseconds of CPU on every call. Because every token is
// random, no salt is needed either (no two principals share a token, and rainbow tables do not
// cover 2^256 inputs). A leaked token file therefore reveals who has access but grants none.
//
// Authentication hashes the presented token and compares the hash with every entry, without
// branching on the data and without stopping at the first match, so the time taken does not
// depend on which entry, or how much of an entry's hash, matched (about 3 µs for 400 tokens).
//
// # Guarantees
//
//   - Deny by default: a procedure missing from the [Policy] is refused for every role.
//   - Tokens, their hashes and national ids never appear in errors or logs; a log line names the
//     principal and the procedure only.
//   - An [Authenticator] is safe for concurrent use, also while [Authenticator.Reload] swaps the
//     token table (for example on SIGHUP).
//
// # Caveats
//
//   - Development mode ([NewDev]) gives every caller one fixed principal, with or without a
//     token, or the role it names as its token ("kommune:0301", "analyst"). It exists for a
//     nird started without a token file; the caller must log loudly that it is in use, and
//     never use it in production. [Authenticator.Dev] reports it.
//   - A kommunenummer in the token file must be a kommune on the day the file is loaded
//     (rules' kommune table, Europe/Oslo): 9999 is refused, and so is a number merged away,
//     with its successor named. Before a kommune reform takes effect, give the kommune's case
//     system a token with its new number; on the day, the old entry makes the file invalid
//     (nird refuses to start, and a reload keeps the old tokens) until it is removed.
//   - Revoking a token means removing its entry and reloading; there is no expiry field yet.
package auth
