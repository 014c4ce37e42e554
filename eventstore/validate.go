package eventstore

// Validate reports what Open would refuse in c before it opens anything (the listen address,
// the replica count, ...), as an error matching ErrInvalid. nird's --check-config calls it.
func (c Config) Validate() error {
	return c.validate()
}
