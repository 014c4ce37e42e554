package rules

import (
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
)

// DESIGN.md "Events": the person key comes from the first national id registered, in the
// order fødselsnummer, D-nummer, DUF-nummer.
func TestKeyingID(t *testing.T) {
	for _, tc := range []struct {
		pr   *nirv1.PersonRegistered
		want string
	}{
		{&nirv1.PersonRegistered{Fodselsnummer: "f", DNummer: "d", DufNummer: "u"}, "f"},
		{&nirv1.PersonRegistered{DNummer: "d", DufNummer: "u"}, "d"},
		{&nirv1.PersonRegistered{DufNummer: "u"}, "u"},
		{&nirv1.PersonRegistered{}, ""},
		{nil, ""},
	} {
		if got := KeyingID(tc.pr); got != tc.want {
			t.Errorf("KeyingID(%v) = %q, want %q", tc.pr, got, tc.want)
		}
	}
}
