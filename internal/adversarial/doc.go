// Package adversarial is the attack suite: each test performs one attack on nird the way a
// hostile local process, case system or kommune would (or damages bytes on disk or on the
// stream), against nird run as a process, and asserts that the attack fails. Every hole found
// in nird becomes a subtest here that failed before its fix; the subtest's name says which
// attack it is.
//
// The tests are grouped by surface, one file each: the NATS server and stream (nats_test.go),
// poison and damaged data (damage_test.go), kommune boundaries (kommune_test.go, and the time
// their answers take: timing_test.go), the HTTP edge and configuration (http_test.go), event
// identity (events_test.go). Helpers a file needs for itself stay in that file.
//
// A hole found and not yet closed is written down as a test too, skipped unless
// NIR_KNOWN_HOLES=1: it fails until the fix, which then removes the skip. None is open now
// (the last two, a case system's large requests and its subscriptions, were closed by
// putting each case system in a NATS account of its own).
package adversarial
