package access

import "errors"

var (
	// ErrNotFound is returned when the person is hidden from the scope: a kommune that never
	// had the person. The edges answer it exactly as they answer a person nobody registered.
	ErrNotFound = errors.New("person not found")

	// ErrDenied is returned when the scope may not do what it asked. The error is a
	// *DeniedError naming the field and the rule.
	ErrDenied = errors.New("permission denied")

	// ErrUnauthenticated is returned by FromContext when the context carries no principal.
	ErrUnauthenticated = errors.New("no principal")
)

// DeniedError says which part of a request the scope may not touch, and why. Its message
// never holds a national id.
type DeniedError struct {
	// Field is the request's field at fault, e.g. "registrations[0].event.kommune"; empty
	// when the whole request is refused (a role that may not call it).
	Field string
	// Reason states the rule.
	Reason string
}

func (e *DeniedError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Is reports that a *DeniedError is ErrDenied.
func (e *DeniedError) Is(target error) bool { return target == ErrDenied }

func denied(field, reason string) error {
	return &DeniedError{Field: field, Reason: reason}
}
