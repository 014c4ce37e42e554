package ingest_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/eventstore"
	"github.com/introreg/nir/internal/ingest"
	"github.com/introreg/nir/internal/personkey"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
	"github.com/introreg/nir/sealing"
)

// TestService_SealedRetry: with identities sealed (DOMAIN.md Product decisions 15), a retried
// registration (with a D-nummer, so with a claim) is answered as a duplicate, by the service
// that stored it and by another on the same stream that reads it sealed; the stream holds the
// ids sealed only.
func TestService_SealedRetry(t *testing.T) {
	ctx := context.Background()
	store, err := eventstore.Open(ctx, eventstore.Config{Dir: filepath.Join(t.TempDir(), "js")})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	keys, err := personkey.New([]byte("test secret for the ingest tests"))
	if err != nil {
		t.Fatal(err)
	}
	master, _, err := sealing.NewDataKey()
	if err != nil {
		t.Fatal(err)
	}
	ks, err := store.OpenKeyStore(ctx, master)
	if err != nil {
		t.Fatal(err)
	}
	defer ks.Close()
	newSvc := func() *ingest.Service {
		return ingest.New(ingest.Config{Store: store, Keys: keys, Now: func() time.Time { return fixedNow },
			Sealer: sealing.Events{Keys: ks, Strict: true}})
	}
	a, b := newSvc(), newSvc()
	fnr, reg := person(3, false)
	reg.GetEvent().GetPersonRegistered().DNummer = rules.SyntheticDNummer(rules.MustDate(1990, 4, 4), 3)
	first, err := a.Append(ctx, oslo, []*nirv1.Registration{proto.Clone(reg).(*nirv1.Registration)})
	if err != nil {
		t.Fatal(err)
	}
	for name, svc := range map[string]*ingest.Service{"the same service": a, "another service": b} {
		again, err := svc.Append(ctx, oslo, []*nirv1.Registration{proto.Clone(reg).(*nirv1.Registration)})
		if err != nil || !again[0].GetDuplicate() || again[0].GetSequence() != first[0].GetSequence() {
			t.Fatalf("%s: the retry: %v, %v; want the first, as a duplicate", name, again, err)
		}
	}
	history, _, err := store.Read(ctx, first[0].GetPersonKey())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := proto.Marshal(history[0].Event)
	if p := history[0].Event.GetPersonRegistered(); bytes.Contains(raw, []byte(fnr)) || p.GetDNummer() != "" || len(p.GetSealedIdentity()) == 0 || history[0].Event.GetDataKeyId() == "" {
		t.Fatalf("stored: %v; want the ids sealed, the key named", history[0].Event)
	}
}
