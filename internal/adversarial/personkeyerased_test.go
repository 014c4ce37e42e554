package adversarial

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/oklog/ulid/v2"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// TestDamage_PersonKeyCheckedPastErasures: on a stream that names no person key (made by an
// older nird, or by hand), nird checks its key file against the first registrations, and an
// erased person's registration, whose ids read «slettet», tells nothing about the key. Before,
// it counted as a registration the key did not match: a register whose first registrations
// were all erased (the retention rule erases the oldest persons first) refused to start with
// its own key, "is not the person key the stream was written with". A registration that
// opens still tells a wrong key.
func TestDamage_PersonKeyCheckedPastErasures(t *testing.T) {
	data := t.TempDir()
	nd := startNird(t, data)
	persons := registerPersons(t, nd, 0, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	operator := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, nd.URL(), connect.WithInterceptors(auth.BearerInterceptor("operator")))
	for _, p := range persons {
		erasure := &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: p.key}, Event: &nirv1.Event{
			Id: ulid.Make().String(), Kommune: kommune,
			Payload: &nirv1.Event_PersonErased{PersonErased: &nirv1.PersonErased{Reason: "oppbevaringstiden er ute"}}}}
		if _, err := operator.Append(ctx, connect.NewRequest(&nirv1.AppendRequest{Registrations: []*nirv1.Registration{erasure}})); err != nil {
			t.Fatalf("erase person %s: %v", p.key, err)
		}
	}
	nd.Stop(t, syscall.SIGTERM)
	dropKeyFingerprint(t, data)
	nd = startNird(t, data) // fails the test if nird refuses to start
	// A registration that opens, after the erased ones, still tells a wrong key.
	registerPersons(t, nd, 2, 1)
	nd.Stop(t, syscall.SIGTERM)
	keyFile := filepath.Join(data, "personkey.secret")
	if err := os.WriteFile(keyFile, []byte(randomKey()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := startFails(t, "--data", data); !strings.Contains(out, "registrations") {
		t.Errorf("a wrong key: the refusal does not name the registrations it was checked against:\n%s", out)
	}
}
