package backup

// SetFailAfter makes restores fail after the step named (failAfter) until reset with nil.
func SetFailAfter(f func(step string) error) { failAfter = f }
