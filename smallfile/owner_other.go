//go:build !unix

package smallfile

import "os"

// Owner is not known on this platform: ok is false.
func Owner(os.FileInfo) (uid, gid int, ok bool) { return 0, 0, false }

// OwnerNote is "": the owner is not known on this platform.
func OwnerNote(os.FileInfo, string) string { return "" }
