package eventstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/introreg/nir/eventstore"
)

// TestCheckReaderConsumer: a reader gets ephemeral pull consumers on the streams it may
// read, always created anew; anything that would deliver into the register's account, last,
// or read another stream is refused naming why.
func TestCheckReaderConsumer(t *testing.T) {
	for _, tc := range []struct {
		name, stream, body, want string
	}{
		{"OrderedConsumer", eventstore.StreamName, `{"stream_name":"NIR_EVENTS","config":{"name":"x_1","ack_policy":"none","filter_subject":"nir.ev.>"}}`, ""},
		{"Checkpoints", eventstore.CheckpointStreamName, `{"stream_name":"NIR_CHECKPOINTS","config":{"ack_policy":"none"}}`, ""},
		{"DataKeys", "KV_" + eventstore.KeyBucket, `{"stream_name":"KV_NIR_KEYS","config":{"ack_policy":"none"}}`, ""},
		{"ExplicitAcksBecomeNone", eventstore.StreamName, `{"stream_name":"NIR_EVENTS","config":{"ack_policy":"explicit","max_ack_pending":-1,"ack_wait":600000000000}}`, ""},
		{"UpdateBecomesCreate", eventstore.StreamName, `{"stream_name":"NIR_EVENTS","config":{"name":"nird_1"},"action":"update"}`, ""},
		{"PushConsumer", eventstore.StreamName, `{"stream_name":"NIR_EVENTS","config":{"deliver_subject":"nir.checkpoint"}}`, "deliver_subject"},
		{"DeliverGroup", eventstore.StreamName, `{"stream_name":"NIR_EVENTS","config":{"deliver_group":"g"}}`, "deliver_group"},
		{"Durable", eventstore.StreamName, `{"stream_name":"NIR_EVENTS","config":{"durable_name":"d"}}`, "durable_name"},
		{"LeaseBucket", "KV_" + eventstore.LeaseBucket, `{"stream_name":"KV_NIR_LEASES","config":{}}`, `stream "KV_NIR_LEASES"`},
		{"StreamNameDiffers", eventstore.StreamName, `{"stream_name":"KV_NIR_LEASES","config":{}}`, "stream_name"},
		{"Direct", eventstore.StreamName, `{"stream_name":"NIR_EVENTS","config":{"direct":true}}`, "direct"},
		{"LongLived", eventstore.StreamName, `{"stream_name":"NIR_EVENTS","config":{"inactive_threshold":86400000000000}}`, "inactive_threshold"},
		{"NotJSON", eventstore.StreamName, `{`, "not a consumer creation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := eventstore.CheckReaderConsumer(tc.stream, []byte(tc.body))
			if tc.want != "" {
				if !errors.Is(err, eventstore.ErrReaderConsumer) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("err = %v, want ErrReaderConsumer naming %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if req.Action != server.ActionCreate {
				t.Fatalf("action = %v, want create (never an update of an existing consumer)", req.Action)
			}
			if d := req.Config.InactiveThreshold; d <= 0 || d > 10*time.Minute {
				t.Fatalf("inactive threshold %s: the consumer would stay", d)
			}
			if req.Config.AckPolicy != server.AckNone || req.Config.MaxAckPending != 0 {
				t.Fatalf("ack policy %v, max ack pending %d: the server would keep an entry per message delivered", req.Config.AckPolicy, req.Config.MaxAckPending)
			}
		})
	}
}
