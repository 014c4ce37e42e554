package rules

import "errors"

// ErrRefused is returned (wrapped in a Refusal) when a rule refuses a registration. Every
// Refusal matches it with errors.Is; the Refusal's Code says which rule.
var ErrRefused = errors.New("registration refused by the regelmotor")

// ErrEnumUnknown is returned by ParseEnum when a name is none of the enum's: misspelt,
// another enum's, or written with a non-ASCII look-alike (the dotless ı, the long s ſ, the
// Kelvin sign) that Unicode case mapping would turn into one of its names.
var ErrEnumUnknown = errors.New("not a name of the enum")

// ErrEnumUnspecified is returned by ParseEnum for an enum's *_UNSPECIFIED name, which is no
// value: leave the value empty for unset.
var ErrEnumUnspecified = errors.New("the UNSPECIFIED name is no value (leave it empty for unset)")
