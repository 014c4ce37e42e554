package adversarial

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/auth"
	"github.com/introreg/nir/internal/nirdtest"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// TestHTTP_RetractionsOfItsOwnBigPerson: a kommune's request of 1 000 retractions for its own
// person of 2 001 events is refused whole (ResourceExhausted, naming the first retraction
// past the bound and how many fit, with no id), and nothing of it is stored; the retractions
// that fit are stored in a request of their own.
//
// Found on 2026-12-07 (helper-124): each retraction is judged against the person re-folded
// without its target, so one request of r retractions folds r times the person's events.
// One request of 500 pairs of an event and its retraction, for a person of 8 000 events, took
// 3.8 s of nird's CPU, and any kommune may send it for its own person, again and again.
func TestHTTP_RetractionsOfItsOwnBigPerson(t *testing.T) {
	tokens, tokOslo, _ := floodTokens(t)
	n := nirdtest.Start(t, "--data", t.TempDir(), "--tokens", tokens)
	key := natsAppendHTTP(t, n, tokOslo, natsRegistration(1)).GetPersonKey()
	var stored []string
	for range 4 {
		req := floodEvents(key, 500)
		natsAppendHTTP(t, n, tokOslo, req)
		for _, r := range req.GetRegistrations() {
			stored = append(stored, r.GetEvent().GetId())
		}
	}
	retract := func(ids []string) *connect.Request[nirv1.AppendRequest] {
		req := &nirv1.AppendRequest{}
		for _, id := range ids {
			req.Registrations = append(req.Registrations, &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: key}, Event: &nirv1.Event{
				Id: ulid.Make().String(), Kommune: "0301",
				Payload: &nirv1.Event_EventRetracted{EventRetracted: &nirv1.EventRetracted{EventId: id, Reason: "feilregistrert"}}}})
		}
		return connect.NewRequest(req)
	}
	oslo := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, n.URL(), connect.WithInterceptors(auth.BearerInterceptor(tokOslo)))
	ctx := natsCtx(t, time.Minute)
	history := func() int {
		t.Helper()
		res, err := oslo.History(ctx, connect.NewRequest(&nirv1.HistoryRequest{Person: &nirv1.PersonRef{PersonKey: key}}))
		if err != nil {
			t.Fatal(err)
		}
		return len(res.Msg.GetEvents())
	}

	// 2 001 stored and 1 000 new events: a million re-folded events fit 333 retractions.
	_, err := oslo.Append(ctx, retract(stored[:1000]))
	if connect.CodeOf(err) != connect.CodeResourceExhausted || !strings.Contains(err.Error(), "registrations[333]: a retraction of a person of 3001 events, and at most 333 fit") {
		t.Fatalf("1 000 retractions of a person of 2 001 events: %v; want ResourceExhausted naming registrations[333]", err)
	}
	if strings.Contains(err.Error(), key) {
		t.Fatal("the refusal holds the person's key")
	}
	if h := history(); h != 2001 {
		t.Fatalf("%d events after the refusal, want the 2 001 before", h)
	}
	if _, err := oslo.Append(ctx, retract(stored[:333])); err != nil {
		t.Fatalf("333 retractions: %v", err)
	}
	if h := history(); h != 2334 {
		t.Fatalf("%d events, want 2 334", h)
	}
}
