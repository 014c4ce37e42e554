package auth

import (
	"errors"
	"fmt"
)

var (
	// ErrUnauthenticated is returned when a request carries no bearer token, a malformed
	// Authorization header, or a token that matches no entry of the token file.
	ErrUnauthenticated = errors.New("auth: unauthenticated")

	// ErrPermissionDenied is returned when an authenticated principal's role may not call a
	// procedure, or may not touch the kommune or person the request concerns.
	ErrPermissionDenied = errors.New("auth: permission denied")

	// ErrInvalidConfig is returned when a token file cannot be parsed or fails validation. The
	// wrapped [ConfigError] values name the entry and the field.
	ErrInvalidConfig = errors.New("auth: invalid token file")
)

// ConfigError is one validation failure of a token file entry. It matches
// [ErrInvalidConfig] with errors.Is.
type ConfigError struct {
	// Index is the entry's position in the file, from 0; -1 for the file as a whole.
	Index int
	// Name is the entry's name, when it has one.
	Name string
	// Field is the JSON field at fault, for example "kommune" or "token_sha256".
	Field string
	// Msg says what is wrong.
	Msg string
}

// Error implements error.
func (e *ConfigError) Error() string {
	if e.Index < 0 {
		return "token file: " + e.Msg
	}
	where := fmt.Sprintf("entry %d", e.Index)
	if e.Name != "" {
		where += fmt.Sprintf(" (%q)", e.Name)
	}
	return fmt.Sprintf("token file: %s: field %q: %s", where, e.Field, e.Msg)
}

// Is reports whether target is [ErrInvalidConfig].
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }
