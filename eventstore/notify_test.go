package eventstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/introreg/nir/eventstore"
)

// TestStore_Notify wakes a reader on appends by its own store and by another writer, and
// each wake-up finds the event already readable.
func TestStore_Notify(t *testing.T) {
	reader, srv := openStore(t, nil)
	writer, err := eventstore.Open(context.Background(), eventstore.Config{URL: srv.ClientURL()})
	if err != nil {
		t.Fatal(err)
	}
	defer writer.Close()
	ctx := context.Background()
	signals := make(chan struct{}, 1)
	stop, err := reader.Notify(func() {
		select {
		case signals <- struct{}{}:
		default:
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		store *eventstore.Store
	}{
		{"OwnAppend", reader},
		{"OtherWriter", writer},
		{"OtherWriterBatch", writer},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			select { // drop an earlier signal
			case <-signals:
			default:
			}
			key := personKey(tt.name)
			pos, err := tt.store.Append(ctx, eventstore.PersonAppend{PersonKey: key, Events: events(key, 1+2*(i/2))})
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-signals:
			case <-time.After(10 * time.Second):
				t.Fatal("no signal within 10s")
			}
			eventually(t, eventualTimeout, "event readable after signal", func() bool {
				return mustLastSeq(t, reader) >= pos[len(pos)-1].Seq
			})
		})
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Fatalf("second stop: %v", err)
	}
}
