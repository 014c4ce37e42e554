//go:build !linux

package projections

// diskFree is not known here: the spill does not watch its disk.
func diskFree(string) (free, size int64, ok bool) { return 0, 0, false }
