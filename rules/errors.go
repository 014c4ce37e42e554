package rules

import "errors"

// ErrRefused is returned (wrapped in a Refusal) when a rule refuses a registration. Every
// Refusal matches it with errors.Is; the Refusal's Code says which rule.
var ErrRefused = errors.New("registration refused by the regelmotor")
