package rules

// A way for tests to make the fold panic, since no real input does (State.Faults).

import (
	"sync/atomic"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// faultHook, when set, makes applyOne panic on the events it returns true for, and finish
// when it returns true for nil.
var faultHook atomic.Pointer[func(*nirv1.Event) bool]

// errFaultForTest is what the fold panics with when faultHook asks it to.
type errFaultForTest struct{}

// SetFaultForTest makes every fold of an event that f returns true for panic, as a bug in the
// rules would, until restore is called; f is asked with a nil event when the fold settles the
// whole state after its events (a panic no event is to blame for), and must be safe for
// concurrent use. It is for tests only (of this package and of the packages that fold with
// it): nird never calls it.
func SetFaultForTest(f func(*nirv1.Event) bool) (restore func()) {
	old := faultHook.Swap(&f)
	return func() { faultHook.Store(old) }
}

// faultForTest panics if a test asked for ev's fold to (SetFaultForTest).
func faultForTest(ev *nirv1.Event) {
	if h := faultHook.Load(); h != nil && (*h)(ev) {
		panic(errFaultForTest{})
	}
}
