//go:build !unix

package projections

import (
	"io"
	"os"
)

// mapFile reads the first size bytes of f (no mapping on this platform).
func mapFile(f *os.File, size int64) (data []byte, unmap func(), err error) {
	data = make([]byte, size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, nil, err
	}
	return data, func() {}, nil
}
