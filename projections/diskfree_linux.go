package projections

import "syscall"

// diskFree returns the bytes an unprivileged writer may still take on dir's filesystem, and
// the filesystem's size; ok is false when they cannot be known.
func diskFree(dir string) (free, size int64, ok bool) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(dir, &fs); err != nil {
		return 0, 0, false
	}
	return int64(fs.Bavail) * int64(fs.Bsize), int64(fs.Blocks) * int64(fs.Bsize), true
}
