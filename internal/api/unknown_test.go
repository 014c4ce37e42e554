package api

import (
	"testing"

	"google.golang.org/protobuf/encoding/protowire"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// TestFindUnknown: unknown fields are found wherever they hide below a message (singular
// fields, list elements, the oneof payload, deep dates), with the path to them; a clean
// message has none.
func TestFindUnknown(t *testing.T) {
	unknown := protowire.AppendString(protowire.AppendTag(nil, 999, protowire.BytesType), "x")
	build := func() *nirv1.AppendRequest {
		reg := func() *nirv1.Registration {
			return &nirv1.Registration{Person: &nirv1.PersonRef{PersonKey: "k"}, Event: &nirv1.Event{Id: "e",
				Payload: &nirv1.Event_OfferRegistered{OfferRegistered: &nirv1.OfferRegistered{Date: &nirv1.Date{Year: 2024, Month: 1, Day: 2}}}}}
		}
		return &nirv1.AppendRequest{Registrations: []*nirv1.Registration{reg(), reg()}}
	}
	tests := []struct {
		name  string
		plant func(r *nirv1.AppendRequest)
		want  string
	}{
		{"Clean", func(*nirv1.AppendRequest) {}, ""},
		{"Top", func(r *nirv1.AppendRequest) { r.ProtoReflect().SetUnknown(unknown) }, "request"},
		{"ListElement", func(r *nirv1.AppendRequest) { r.Registrations[1].ProtoReflect().SetUnknown(unknown) }, "registrations[1]"},
		{"Payload", func(r *nirv1.AppendRequest) {
			r.Registrations[0].Event.GetOfferRegistered().ProtoReflect().SetUnknown(unknown)
		}, "registrations[0].event.offer_registered"},
		{"DeepDate", func(r *nirv1.AppendRequest) {
			r.Registrations[1].Event.GetOfferRegistered().GetDate().ProtoReflect().SetUnknown(unknown)
		}, "registrations[1].event.offer_registered.date"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := build()
			tt.plant(r)
			got, ok := unknownField(r.ProtoReflect())
			if !ok {
				got = ""
			}
			if got != tt.want {
				t.Errorf("unknownField = %q, want %q", got, tt.want)
			}
		})
	}
}
