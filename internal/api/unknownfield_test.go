package api_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/introreg/nir/internal/api"
	"github.com/introreg/nir/internal/auth"
	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/proto/nir/v1/nirv1connect"
)

// plantingJSON is a Connect client's JSON codec that sends one key more than the schema
// defines, in every object after "at": what a client on a newer schema sends.
type plantingJSON struct{ at string }

func (plantingJSON) Name() string { return "json" }

func (c plantingJSON) Marshal(m any) ([]byte, error) {
	b, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m.(proto.Message))
	if err != nil {
		return nil, err
	}
	return []byte(strings.ReplaceAll(string(b), `"`+c.at+`":{`, `"`+c.at+`":{"gjelder":"x",`)), nil
}

func (plantingJSON) Unmarshal(b []byte, m any) error {
	return protojson.Unmarshal(b, m.(proto.Message))
}

// TestAppend_UnknownFieldDetail: an append holding a field the schema does not define is
// refused, whatever the transport, as InvalidArgument naming the message that holds it:
// a Connect client gets a nir.v1.FieldViolation detail with its path (as AppendAs gave
// before decoding refused such requests), a NATS client that field and reason in the
// error's description. Nothing is stored.
func TestAppend_UnknownFieldDetail(t *testing.T) {
	f := newFixture(t)
	before := f.lastSeq(t)
	const reason = "holds fields this nird's schema does not define; nird stores and answers only what it has validated (drop the fields, or upgrade nird)"
	binary := func(plant func(r *nirv1.Registration)) *nirv1.AppendRequest {
		r := onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))
		plant(r)
		return one(r)
	}
	tests := []struct {
		name  string
		field string
		send  func(t *testing.T) result
	}{
		{"ConnectBinary", "registrations[0].event", func(t *testing.T) result {
			return viaConnect.send(t, f.server, tokOslo, binary(func(r *nirv1.Registration) {
				r.Event.ProtoReflect().SetUnknown(unknownBytes(999, "gjelder "+f.bergen))
			}))
		}},
		{"ConnectBinaryDeep", "registrations[0].event.offer_registered.date", func(t *testing.T) result {
			return viaConnect.send(t, f.server, tokOslo, binary(func(r *nirv1.Registration) {
				r.Event.GetOfferRegistered().GetDate().ProtoReflect().SetUnknown(unknownBytes(4, "x"))
			}))
		}},
		{"ConnectJSON", "registrations[0].event", func(t *testing.T) result {
			return viaJSONClient(t, f, "event", one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))))
		}},
		{"ConnectJSONDeep", "registrations[0].event.offer_registered.date", func(t *testing.T) result {
			return viaJSONClient(t, f, "date", one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))))
		}},
		{"NATSBinary", "registrations[0].person", func(t *testing.T) result {
			return viaNATS.send(t, f.server, tokOslo, binary(func(r *nirv1.Registration) {
				r.Person.ProtoReflect().SetUnknown(unknownBytes(3, f.bergen))
			}))
		}},
		{"NATSJSON", "registrations[0].event", func(t *testing.T) result {
			body, err := plantingJSON{at: "event"}.Marshal(one(onPerson(f.oslo, "0301", offerEv(d(2024, 3, 2)))))
			if err != nil {
				t.Fatal(err)
			}
			return natsRequest(t, f.server, tokOslo, "application/json", body)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.send(t)
			if r.raw != nil || r.code != connect.CodeInvalidArgument {
				t.Fatalf("answer %v %q (%v), want InvalidArgument", r.code, r.msg, r.raw)
			}
			if want := tt.field + ": " + reason; r.msg != want {
				t.Errorf("message %q, want %q", r.msg, want)
			}
			if strings.HasPrefix(tt.name, "NATS") {
				return // the NATS ingress answers with a code and a description only
			}
			if len(r.fields) != 1 || r.fields[0].GetField() != tt.field || r.fields[0].GetReason() != reason {
				t.Errorf("details %v, want one FieldViolation for %s", r.fields, tt.field)
			}
		})
	}
	if got := f.lastSeq(t); got != before {
		t.Errorf("stream last sequence %d after refused requests, was %d", got, before)
	}
}

// viaJSONClient appends req with a Connect client speaking JSON that adds a key to the
// object of the field at.
func viaJSONClient(t *testing.T, f *fixture, at string, req *nirv1.AppendRequest) result {
	t.Helper()
	c := nirv1connect.NewRegistrationServiceClient(http.DefaultClient, f.url,
		connect.WithCodec(plantingJSON{at: at}), connect.WithInterceptors(auth.BearerInterceptor(tokOslo)))
	_, err := c.Append(context.Background(), connect.NewRequest(req))
	if err == nil {
		return result{}
	}
	return connectResult(err)
}

// TestUnmarshal_UnknownFieldsError: Unmarshal refuses an unknown field with
// *api.UnknownFieldsError naming the message that holds it, in JSON by either name
// protojson takes for a field, and never quotes the key (a national id as a key here).
func TestUnmarshal_UnknownFieldsError(t *testing.T) {
	const fnr = "01129012345"
	tests := []struct {
		name, body, field string
	}{
		{"Top", `{"` + fnr + `":1}`, "request"},
		{"JSONNames", `{"registrations":[{"event":{"id":"e"}},{"event":{"offerRegistered":{"date":{"year":2024,"` + fnr + `":1}}}}]}`, "registrations[1].event.offer_registered.date"},
		{"ProtoNames", `{"registrations":[{"event":{"offer_registered":{"programme":"PROGRAMME_INTRO","x":null}}}]}`, "registrations[0].event.offer_registered"},
		{"AfterTimestamp", `{"registrations":[{"event":{"recordedAt":"2024-01-02T03:04:05Z","person_key":"k","y":[{"z":1}]}}]}`, "registrations[0].event"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := api.Unmarshal([]byte(tt.body), true, &nirv1.AppendRequest{})
			var uf *api.UnknownFieldsError
			if !errors.As(err, &uf) || uf.Field != tt.field {
				t.Fatalf("Unmarshal: %v, want an UnknownFieldsError for %s", err, tt.field)
			}
			if strings.Contains(err.Error(), fnr) {
				t.Errorf("the error quotes the key: %v", err)
			}
		})
	}
	// Refused for another reason, not an unknown field: protojson's own error.
	err := api.Unmarshal([]byte(`{"registrations":[{"event":{"offer_registered":{"programme":"PROGRAMME_NONE_SUCH"}}}]}`), true, &nirv1.AppendRequest{})
	var uf *api.UnknownFieldsError
	if err == nil || errors.As(err, &uf) {
		t.Errorf("a bad enum name: %v, want protojson's refusal", err)
	}
}
