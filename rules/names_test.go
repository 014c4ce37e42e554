package rules_test

import (
	"errors"
	"slices"
	"testing"

	nirv1 "github.com/introreg/nir/proto/nir/v1"
	"github.com/introreg/nir/rules"
)

// TestParseEnum: a name is read in any ASCII case, with or without its prefix, '-' for '_';
// a look-alike that Unicode case mapping turns into a name (the dotless ı, the long s ſ, the
// Kelvin sign), an unknown name and the UNSPECIFIED name are refused, so that no filter
// typed wrong reads wider than the one meant.
func TestParseEnum(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want nirv1.Law
		err  error
	}{
		{"", nirv1.Law_LAW_UNSPECIFIED, nil},
		{"IL", nirv1.Law_LAW_IL, nil},
		{"il", nirv1.Law_LAW_IL, nil},
		{"law_il_6a", nirv1.Law_LAW_IL_6A, nil},
		{"Il-6A", nirv1.Law_LAW_IL_6A, nil},
		{"ıl", 0, rules.ErrEnumUnknown},      // dotless i
		{"ıntrol", 0, rules.ErrEnumUnknown},  // dotless i
		{"\u212Aa", 0, rules.ErrEnumUnknown}, // Kelvin sign: no law, but never read as K
		{"UNSPECIFIED", 0, rules.ErrEnumUnspecified},
		{"law_unspecified", 0, rules.ErrEnumUnspecified},
		{"XYZ", 0, rules.ErrEnumUnknown},
		{"LAW_", 0, rules.ErrEnumUnknown},
		{" IL", 0, rules.ErrEnumUnknown},
	} {
		n, err := rules.ParseEnum(nirv1.Law_value, "LAW_", tc.in)
		if nirv1.Law(n) != tc.want || !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("ParseEnum(Law, %+q) = %v, %v; want %v, %v", tc.in, nirv1.Law(n), err, tc.want, tc.err)
		}
	}
	// The long s: SYKDOM is an avslutningsårsak.
	if n, err := rules.ParseEnum(nirv1.TerminationReason_value, "TERMINATION_REASON_", "ſykdom"); n != 0 || !errors.Is(err, rules.ErrEnumUnknown) {
		t.Errorf("ParseEnum(TerminationReason, ſykdom) = %d, %v; want refused as unknown", n, err)
	}
	if got := rules.EnumName(nirv1.Law_value, "LAW_", int32(nirv1.Law_LAW_IL_6A)); got != "IL_6A" {
		t.Errorf("EnumName(Law, IL_6A) = %q", got)
	}
	if got := rules.EnumName(nirv1.Law_value, "LAW_", 0) + rules.EnumName(nirv1.Law_value, "LAW_", 99); got != "" {
		t.Errorf("EnumName(Law) of 0 and 99 = %q, want none", got)
	}
	if got, want := rules.EnumNames(nirv1.Law_value, "LAW_"), []string{"INTROL", "IL", "IL_6A"}; !slices.Equal(got, want) {
		t.Errorf("EnumNames(Law) = %q, want %q", got, want)
	}
}
