package nirv1

import (
	"reflect"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// HoldsUnknown reports whether ev holds what this build cannot read: no payload it knows (a
// kind a newer nird added), or fields it does not know in the envelope or the payload (a
// field a newer nird added to a kind, e.g. one that moves a deadline), in ev or in an event a
// merge copied into it (PersonsMerged.absorbed_events). A fold leaves either out of the
// person's state, as what it cannot judge. Fields added deeper (in a Date) are not looked
// for. A nil event holds nothing.
func HoldsUnknown(ev *Event) bool {
	if ev == nil {
		return false
	}
	if ev.GetPayload() == nil || len(ev.ProtoReflect().GetUnknown()) > 0 ||
		len(payloadMessage(ev.GetPayload()).ProtoReflect().GetUnknown()) > 0 {
		return true
	}
	for _, c := range ev.GetPersonsMerged().GetAbsorbedEvents() {
		if HoldsUnknown(c) {
			return true
		}
	}
	return false
}

// payloadMessage is the message a payload oneof's wrapper holds (its one field). The fold
// asks it of every event, a rebuild's among them: through protoreflect (WhichOneof, Get) it
// cost some 400 ns an event, as much as decoding a small one; this is some 30.
func payloadMessage(p isEvent_Payload) protoreflect.ProtoMessage {
	return reflect.ValueOf(p).Elem().Field(0).Interface().(protoreflect.ProtoMessage)
}
