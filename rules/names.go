package rules

import (
	"cmp"
	"slices"
	"strings"
	"unicode/utf8"
)

// FoldASCII is fold(s), strings.ToUpper or strings.ToLower, for ASCII text; other text is
// returned as it is, to match none of the register's names, which are ASCII: Unicode case
// mapping turns look-alikes into them (the long s ſ into S, the dotless ı into I, the Kelvin
// sign into k), and a filter read so is wider than the one its user typed.
func FoldASCII(s string, fold func(string) string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return s
		}
	}
	return fold(s)
}

// ParseEnum reads a protobuf enum value by its name, as the generated map of names to
// numbers (nirv1.Law_value) has it, with or without the prefix ("LAW_"), in any ASCII case
// and with '-' for '_': "il_6a", "IL-6A" and "LAW_IL_6A" are LAW_IL_6A. An empty s is 0
// (unset). Refused: a name the enum does not have, among them any name with a non-ASCII
// letter (ErrEnumUnknown), and the *_UNSPECIFIED name (ErrEnumUnspecified).
func ParseEnum(values map[string]int32, prefix, s string) (int32, error) {
	if s == "" {
		return 0, nil
	}
	name := FoldASCII(strings.ReplaceAll(s, "-", "_"), strings.ToUpper)
	if !strings.HasPrefix(name, prefix) {
		name = prefix + name
	}
	switch n, ok := values[name]; {
	case !ok:
		return 0, ErrEnumUnknown
	case n == 0:
		return 0, ErrEnumUnspecified
	default:
		return n, nil
	}
}

// EnumName is the name of the enum value n without the prefix ("IL_6A" for LAW_IL_6A), as
// the generated map of names has it; "" for 0 (unset) or a number it does not name.
func EnumName(values map[string]int32, prefix string, n int32) string {
	for name, v := range values {
		if v == n && n != 0 {
			return strings.TrimPrefix(name, prefix)
		}
	}
	return ""
}

// EnumNames lists the names ParseEnum accepts, without the prefix, in the order of their
// numbers: what a refusal offers instead.
func EnumNames(values map[string]int32, prefix string) []string {
	type named struct {
		n    int32
		name string
	}
	var all []named
	for name, n := range values {
		if n != 0 {
			all = append(all, named{n, strings.TrimPrefix(name, prefix)})
		}
	}
	slices.SortFunc(all, func(a, b named) int { return cmp.Compare(a.n, b.n) })
	out := make([]string, len(all))
	for i, v := range all {
		out[i] = v.name
	}
	return out
}
