package eventstore

import (
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// TestStreamVerdict: every setting that lets history be lost, events in without nird or
// appends fail is reported and repaired; quotas and extra replicas are the operator's and
// kept; what cannot be changed in place is fatal.
func TestStreamVerdict(t *testing.T) {
	want := streamConfig(Config{Replicas: 3, DuplicateWindow: DefaultDuplicateWindow})
	tests := []struct {
		name    string
		change  func(c *jetstream.StreamConfig)
		setting string // "" = no mismatch
		fatal   bool
	}{
		{"Same", func(*jetstream.StreamConfig) {}, "", false},
		{"QuotaKept", func(c *jetstream.StreamConfig) { c.MaxBytes, c.MaxMsgs = 1<<40, 1e9 }, "", false},
		{"MoreReplicasKept", func(c *jetstream.StreamConfig) { c.Replicas = 5 }, "", false},
		{"FewerReplicas", func(c *jetstream.StreamConfig) { c.Replicas = 1 }, "replicas", false},
		{"MaxAge", func(c *jetstream.StreamConfig) { c.MaxAge = 24 * time.Hour }, "max_age", false},
		{"PerPersonLimit", func(c *jetstream.StreamConfig) { c.MaxMsgsPerSubject = 10 }, "max_msgs_per_subject", false},
		{"DiscardOld", func(c *jetstream.StreamConfig) { c.Discard = jetstream.DiscardOld }, "discard", false},
		{"Subjects", func(c *jetstream.StreamConfig) { c.Subjects = []string{"nir.ev.*", "other.>"} }, "subjects", false},
		{"DeletesAllowed", func(c *jetstream.StreamConfig) { c.DenyDelete = false }, "deny_delete", false},
		{"PurgesAllowed", func(c *jetstream.StreamConfig) { c.DenyPurge = false }, "deny_purge", false},
		{"NoAtomic", func(c *jetstream.StreamConfig) { c.AllowAtomicPublish = false }, "allow_atomic", false},
		{"NoDirect", func(c *jetstream.StreamConfig) { c.AllowDirect = false }, "allow_direct", false},
		{"NoAck", func(c *jetstream.StreamConfig) { c.NoAck = true }, "no_ack", false},
		{"Rollup", func(c *jetstream.StreamConfig) { c.AllowRollup = true }, "allow_rollup_hdrs", false},
		{"MsgTTL", func(c *jetstream.StreamConfig) { c.AllowMsgTTL = true }, "allow_msg_ttl", false},
		{"Schedules", func(c *jetstream.StreamConfig) { c.AllowMsgSchedules = true }, "allow_msg_schedules", false},
		{"AsyncPersist", func(c *jetstream.StreamConfig) { c.PersistMode = jetstream.AsyncPersistMode }, "persist_mode", false},
		{"RePublish", func(c *jetstream.StreamConfig) {
			c.RePublish = &jetstream.RePublish{Source: "nir.ev.*", Destination: "leak.>"}
		}, "republish", false},
		{"Sources", func(c *jetstream.StreamConfig) { c.Sources = []*jetstream.StreamSource{{Name: "OTHER"}} }, "sources", false},
		{"MemoryStorage", func(c *jetstream.StreamConfig) { c.Storage = jetstream.MemoryStorage }, "", true},
		{"WorkQueue", func(c *jetstream.StreamConfig) { c.Retention = jetstream.WorkQueuePolicy }, "", true},
		{"Mirror", func(c *jetstream.StreamConfig) { c.Mirror = &jetstream.StreamSource{Name: "OTHER"} }, "", true},
		{"Sealed", func(c *jetstream.StreamConfig) { c.Sealed = true }, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := streamConfig(Config{Replicas: 3, DuplicateWindow: DefaultDuplicateWindow})
			tt.change(&have)
			mm, repaired, err := streamVerdict(have, want)
			if tt.fatal {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("verdict = %v, %v; want ErrInvalid", mm, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case tt.setting == "" && len(mm) != 0:
				t.Fatalf("mismatches %v, want none", mm)
			case tt.setting != "" && (len(mm) != 1 || mm[0].Setting != tt.setting):
				t.Fatalf("mismatches %v, want only %s", mm, tt.setting)
			}
			if again, _, _ := streamVerdict(repaired, want); len(again) != 0 {
				t.Errorf("the repaired config still differs: %v", again)
			}
			if repaired.MaxBytes != have.MaxBytes || repaired.Replicas < have.Replicas {
				t.Errorf("repair changed the operator's quota or lowered the replicas: %+v", repaired)
			}
		})
	}
}
