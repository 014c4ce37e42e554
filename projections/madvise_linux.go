package projections

import (
	"syscall"

	bolt "go.etcd.io/bbolt"
)

// dropMapped tells the kernel that this process no longer needs the pages of b's file it
// has mapped: they leave the process's resident set (RSS) and stay in the page cache, from
// where the next read maps them again. bbolt maps the whole file read-only and writes with
// pwrite, so the mapping holds no change of its own and nothing is lost. A rebuild reads
// every stored event once through the mapping; without this its RSS grew by the file's size
// (issue 17: peak RSS < 1 GiB). The read transaction holds bbolt's mapping in place
// (a remap waits for it), so the range is the mapping's. A file of no more than above bytes
// keeps its pages.
func dropMapped(b *bolt.DB, above int64) {
	_ = b.View(func(tx *bolt.Tx) error {
		if size := tx.Size(); size > 0 && size > above {
			_, _, _ = syscall.Syscall(syscall.SYS_MADVISE, b.Info().Data, uintptr(size), syscall.MADV_DONTNEED)
		}
		return nil
	})
}
