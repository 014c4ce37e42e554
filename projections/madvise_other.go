//go:build !linux

package projections

import bolt "go.etcd.io/bbolt"

// dropMapped is a no-op where MADV_DONTNEED's meaning for shared file mappings differs.
func dropMapped(*bolt.DB, int64) {}
