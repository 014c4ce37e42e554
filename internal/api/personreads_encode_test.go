package api

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"sync"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// slotWatchingCodec is Connect's binary codec that records, for each AuditHistoryResponse
// it encodes, how many entries it encoded with no whole-person read slot held.
type slotWatchingCodec struct {
	reads *PersonReads
	mu    sync.Mutex
	// outside is the entries encoded with no slot held; encoded the responses encoded.
	outside, encoded int
}

func (c *slotWatchingCodec) Name() string { return "proto" }

func (c *slotWatchingCodec) Marshal(m any) ([]byte, error) {
	if res, ok := m.(*nirv1.AuditHistoryResponse); ok {
		c.mu.Lock()
		c.encoded++
		if len(c.reads.all) == 0 {
			c.outside += len(res.GetEntries())
		}
		c.mu.Unlock()
	}
	return proto.Marshal(m.(proto.Message))
}

func (c *slotWatchingCodec) Unmarshal(data []byte, m any) error {
	return proto.Unmarshal(data, m.(proto.Message))
}

// TestAuditHistory_EncodedInItsSlot: the handler held its PersonReads slot while it read a
// person's history, and the response, one entry an event, was encoded after the slot was
// released, by all the waiting calls at once (about a fifth of the CPU of an AuditHistory of
// a 10 000-event person). The binary response is now encoded in the slot; the codec sends
// the bytes as they are. JSON, and the console's in-process
// calls, get the message itself.
func TestAuditHistory_EncodedInItsSlot(t *testing.T) {
	reads := NewPersonReads(2, 1)
	codec := &slotWatchingCodec{reads: reads}
	w := startQueryConfig(t, QueryConfig{PersonReads: reads}, connect.WithCodec(codec), StrictJSON())

	req := &nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: w.people["p1"].key}}
	// What the console gets in process: the message itself.
	inProcess, err := w.q.AuditHistory(auth.NewContext(context.Background(), auth.Principal{Name: "oslo", Role: auth.RoleKommune, Kommune: oslo}), connect.NewRequest(req))
	if err != nil {
		t.Fatal(err)
	}
	if n := len(inProcess.Msg.GetEntries()); n != 4 {
		t.Fatalf("in process: %d entries, want p1's 4", n)
	}
	for _, c := range []struct {
		name string
		opts []connect.ClientOption
	}{
		{"Connect", nil},
		{"GRPCWeb", []connect.ClientOption{connect.WithGRPCWeb()}},
		{"JSON", []connect.ClientOption{connect.WithProtoJSON()}},
	} {
		t.Run(c.name, func(t *testing.T) {
			client := nirv1connect.NewQueryServiceClient(http.DefaultClient, w.url, append(c.opts, connect.WithInterceptors(auth.BearerInterceptor(qtOslo)))...)
			res, err := client.AuditHistory(context.Background(), connect.NewRequest(req))
			if err != nil {
				t.Fatal(err)
			}
			if !proto.Equal(res.Msg, inProcess.Msg) {
				t.Errorf("over %s: %d entries, not the %d read in process", c.name, len(res.Msg.GetEntries()), len(inProcess.Msg.GetEntries()))
			}
		})
	}
	codec.mu.Lock()
	defer codec.mu.Unlock()
	if codec.encoded != 2 {
		t.Fatalf("the binary codec encoded %d responses, want 2 (Connect and gRPC-Web)", codec.encoded)
	}
	if codec.outside != 0 {
		t.Errorf("%d entries encoded after the whole-person read slot was released, want none", codec.outside)
	}
}

// TestAuditHistory_GetWithStrayContentType: a Connect GET names its codec in the query
// (encoding=json) and has no body, so its Content-Type header means nothing to Connect; a
// client or proxy that sets "Content-Type: application/proto" on every request still gets
// JSON. encodedInSlot read the header, took the call for binary and sent the JSON of an
// empty message: "{}", a valid answer saying the person has no audit entries.
func TestAuditHistory_GetWithStrayContentType(t *testing.T) {
	w := startQueryConfig(t, QueryConfig{PersonReads: NewPersonReads(2, 1)}, StrictJSON())

	msg, err := protojson.Marshal(&nirv1.AuditHistoryRequest{Person: &nirv1.PersonRef{PersonKey: w.people["p1"].key}})
	if err != nil {
		t.Fatal(err)
	}
	for _, ct := range []string{"", "application/proto", "application/grpc", "application/grpc-web+proto"} {
		t.Run("ContentType="+ct, func(t *testing.T) {
			u := w.url + nirv1connect.QueryServiceAuditHistoryProcedure + "?connect=v1&encoding=json&message=" + url.QueryEscape(string(msg))
			hr, err := http.NewRequest(http.MethodGet, u, nil)
			if err != nil {
				t.Fatal(err)
			}
			hr.Header.Set("Authorization", "Bearer "+qtOslo)
			if ct != "" {
				hr.Header.Set("Content-Type", ct)
			}
			resp, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			var got nirv1.AuditHistoryResponse
			if err := protojson.Unmarshal(body, &got); err != nil {
				t.Fatalf("answer %q: %v", body, err)
			}
			if n := len(got.GetEntries()); n != 4 {
				t.Errorf("GET encoding=json with Content-Type %q: %d entries (%q), want p1's 4", ct, n, body)
			}
		})
	}
}
