//go:build unix

package smallfile

import (
	"fmt"
	"os"
	"syscall"
)

// Owner returns the owner and group of the file fi describes.
func Owner(fi os.FileInfo) (uid, gid int, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0, false
	}
	return int(st.Uid), int(st.Gid), true
}

// OwnerNote says, for a key file (fi, read at path), that it belongs to another user than
// the process's and root ("" when not): that user can read the key, and replace it or open
// it to others after it was checked.
func OwnerNote(fi os.FileInfo, path string) string {
	uid, _, ok := Owner(fi)
	if !ok || uid == 0 || uid == os.Geteuid() {
		return ""
	}
	return fmt.Sprintf("%s belongs to uid %d, neither nird's user nor root: that user can read the key, and replace it or open it to others while nird runs; chown root (or nird's user) %s", path, uid, path)
}
