package adversarial

// Event identity and the append path under contention (issue 10, findings 10 and 11): a
// case system, buggy or hostile, reuses an event id for another person, inside and after
// JetStream's dedupe window, or re-sends an id with other content; and many writers append
// to one person at once without an expectation of their own. nird runs as a process in
// development mode (see kommune_test.go for the helpers).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// evRegs wraps registrations in a request.
func evRegs(regs ...*nirv1.Registration) *nirv1.AppendRequest {
	return &nirv1.AppendRequest{Registrations: regs}
}

// evReuse returns a registration of ev on the person with key that carries id.
func evReuse(key, kommune, id string, ev *nirv1.Event) *nirv1.Registration {
	r := kbOn(key, kommune, ev)
	r.Event.Id = id
	return r
}

// idReuseAttacks reuse the id of one Oslo person's stored offer: for another person (alone,
// and inside a batch with a new event), and for the same person with other content. Each
// must be refused, naming the field, and store nothing; an identical re-send still returns
// the original position.
func idReuseAttacks(t *testing.T, w *kbNird) {
	for _, tr := range kbTransports {
		t.Run("EventIDOfAnotherPerson/"+tr, func(t *testing.T) {
			_, _, offer := w.osloPerson(t)
			other, _, _ := w.osloPerson(t)
			w.waitWindow()
			before := w.lastSeq(t)
			res := w.appendVia(t, tr, kbOslo, evRegs(evReuse(other, "0301", offer, kbOffer(kbDate(2024, 3, 1)))))
			w.refused(t, res, before, connect.CodeAlreadyExists, connect.CodeInvalidArgument)
			if !strings.Contains(res.msg, "event.id") {
				t.Errorf("the refusal %q does not name the field event.id", res.msg)
			}
		})
		t.Run("EventIDOfAnotherPersonInBatch/"+tr, func(t *testing.T) {
			_, _, offer := w.osloPerson(t)
			other, _, _ := w.osloPerson(t)
			w.waitWindow()
			before := w.lastSeq(t)
			res := w.appendVia(t, tr, kbOslo, evRegs(
				kbOn(other, "0301", kbOffer(kbDate(2024, 4, 1))),
				evReuse(other, "0301", offer, kbOffer(kbDate(2024, 3, 1)))))
			w.refused(t, res, before, connect.CodeAlreadyExists, connect.CodeInvalidArgument)
			if !strings.Contains(res.msg, "registrations[1].event.id") {
				t.Errorf("the refusal %q does not name the field registrations[1].event.id", res.msg)
			}
		})
		t.Run("SameIDOtherContent/"+tr, func(t *testing.T) {
			key, _, offer := w.osloPerson(t)
			w.waitWindow()
			before := w.lastSeq(t)
			res := w.appendVia(t, tr, kbOslo, evRegs(evReuse(key, "0301", offer, kbOffer(kbDate(2024, 5, 5)))))
			w.refused(t, res, before, connect.CodeFailedPrecondition)
			if len(res.positions) > 0 && res.positions[0].GetDuplicate() {
				t.Error("other content under a stored id was reported as a duplicate and dropped")
			}
		})
		t.Run("IdenticalResendKeepsPosition/"+tr, func(t *testing.T) {
			key, _, _ := w.osloPerson(t)
			reg := kbOn(key, "0301", kbOffer(kbDate(2024, 3, 3)))
			first := w.mustAppend(t, kbOslo, reg)
			w.waitWindow()
			before := w.lastSeq(t)
			res := w.appendVia(t, tr, kbOslo, evRegs(reg))
			if res.code != 0 || len(res.positions) != 1 || !res.positions[0].GetDuplicate() || res.positions[0].GetSequence() != first[0].GetSequence() {
				t.Errorf("identical re-send: %v %q %v; want duplicate at %d", res.code, res.msg, res.positions, first[0].GetSequence())
			}
			if after := w.lastSeq(t); after != before {
				t.Errorf("identical re-send stored something: %d → %d", before, after)
			}
		})
	}
}

func TestEventAttacks(t *testing.T) {
	// The writers below are one principal appending as fast as they can: no rate limit for
	// it here (the HTTP edge's flood test holds the limit).
	w := kbStart(t, "--rate-limit", "0")

	// Inside JetStream's dedupe window (nird's default, two minutes).
	t.Run("InsideDedupeWindow", func(t *testing.T) { idReuseAttacks(t, w) })

	// One caller sends two registrations with one new id for two persons at once, while
	// others append: the id beats the read models' event-id index, so JetStream's dedupe
	// window is what catches it, and it refuses a coalesced batch holding it whole
	// without saying which id. One of the two must be stored and the other refused, and
	// nobody else in their batches may pay for it: the batch was sent again until
	// maxAppendAttempts (three resends each), so one case system made every batch it
	// joined fail four times.
	t.Run("ReusedIDCostsOthersNothing", func(t *testing.T) {
		const others, pairs = 24, 12
		keys := make([]string, others+2*pairs)
		for i := range keys {
			keys[i], _, _ = w.osloPerson(t)
		}
		resent := metric(t, w.n, "nir_store_batches_resent_total")
		if resent < 0 {
			t.Fatal("nird exports no nir_store_batches_resent_total")
		}
		refused := metric(t, w.n, "nir_store_batches_refused_total")
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			failed = map[connect.Code]int{}
			stop   = make(chan struct{})
			count  atomic.Int64
		)
		for i := range others {
			wg.Go(func() {
				for {
					select {
					case <-stop:
						return
					default:
					}
					_, err := w.reg(kbOslo).Append(context.Background(), connect.NewRequest(evRegs(kbOn(keys[i], "0301", kbOffer(kbDate(2024, 3, 1))))))
					count.Add(1)
					if err != nil {
						mu.Lock()
						failed[connect.CodeOf(err)]++
						mu.Unlock()
					}
				}
			})
		}
		for p := range pairs {
			id := ulid.Make().String()
			var codes [2]connect.Code
			var pw sync.WaitGroup
			for j := range 2 {
				pw.Go(func() {
					key := keys[others+2*p+j]
					_, err := w.reg(kbOslo).Append(context.Background(), connect.NewRequest(evRegs(evReuse(key, "0301", id, kbOffer(kbDate(2024, 3, 1))))))
					if err != nil {
						codes[j] = connect.CodeOf(err)
					}
				})
			}
			pw.Wait()
			if slices.Sort(codes[:]); codes != [2]connect.Code{0, connect.CodeAlreadyExists} {
				t.Errorf("pair %d: one id for two persons answered %v, want one stored and one AlreadyExists", p, codes)
			}
		}
		close(stop)
		wg.Wait()
		if len(failed) > 0 {
			t.Errorf("the other appends failed: %v", failed)
		}
		if got := metric(t, w.n, "nir_store_batches_resent_total") - resent; got != 0 {
			t.Errorf("%v coalesced batches were sent again for %d reused ids (%d other appends)", got, pairs, count.Load())
		}
		// The reuser's append goes alone: nird knows the ids of its batches in flight and
		// of those stored lately, so no batch of others is refused for it.
		if got := metric(t, w.n, "nir_store_batches_refused_total") - refused; got != 0 {
			t.Errorf("%v coalesced batches were refused for %d reused ids (%d other appends)", got, pairs, count.Load())
		}
	})

	// Many writers on one person, none with an expectation of its own: the README promises
	// that a lost race is re-read and re-checked, so none may get Aborted.
	for _, writers := range []int{8, 32} {
		t.Run(fmt.Sprintf("ConcurrentWritersGetAborted/%d", writers), func(t *testing.T) {
			key, _, _ := w.osloPerson(t)
			perWriter := 400 / writers
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				failed = map[connect.Code]int{}
			)
			for range writers {
				wg.Go(func() {
					for range perWriter {
						_, err := w.reg(kbOslo).Append(context.Background(), connect.NewRequest(evRegs(kbOn(key, "0301", kbOffer(kbDate(2024, 3, 1))))))
						if err != nil {
							mu.Lock()
							failed[connect.CodeOf(err)]++
							mu.Unlock()
						}
					}
				})
			}
			wg.Wait()
			if len(failed) > 0 {
				t.Errorf("%d writers × %d appends to one person: failures by code %v", writers, perWriter, failed)
			}
			events, code := w.history(kbOslo, key)
			if want := 2 + writers*perWriter; code != 0 || len(events) != want {
				t.Errorf("the person holds %d events (code %v), want %d", len(events), code, want)
			}
		})
	}
}

// TestEventAttacks_AfterDedupeWindow runs nird with a one-second dedupe window and reuses
// ids only after it has passed, when JetStream no longer remembers them.
func TestEventAttacks_AfterDedupeWindow(t *testing.T) {
	w := kbStart(t, "--duplicate-window", "1s")
	w.afterWindow = 1500 * time.Millisecond
	idReuseAttacks(t, w)
}
