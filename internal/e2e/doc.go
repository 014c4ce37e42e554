// Package e2e holds nir's end-to-end tests: they build nird and nirctl, start nird as a
// process on a temporary data directory with a token file, load a synthetic demo population
// with `nirctl demo`, and read it back with real clients: Connect's gRPC protocol over
// HTTP/2 without TLS, and plain HTTP+JSON POSTs as any fagsystem could send without a
// generated client. The package has no code besides its tests.
package e2e
