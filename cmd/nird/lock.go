package main

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/introreg/nir/internal/datadir"
	"github.com/introreg/nir/smallfile"
)

// lockData takes an exclusive lock on the data directory, so that two nird processes (or
// nird and nirctl replay --store) never run the embedded JetStream server on the same
// store, nor share the read-model files. The lock goes with the process, also when it is
// killed.
func lockData(dir string) (unlock func(), err error) {
	unlock, err = datadir.Lock(dir)
	if errors.Is(err, datadir.ErrInUse) {
		return nil, fmt.Errorf("--data %s is in use by another nird (or nirctl replay --store)", dir)
	}
	return unlock, err
}

// removeKeyLeftovers removes what a start killed while it wrote a key file in dir (the data
// directory, or its NATS seeds' directory) left there: WriteNew's temporary files
// (smallfile.RemoveLeftovers), each part of a key nothing uses. Only with the data
// directory's lock held (no other nird writes there now), and only for the key files in dir:
// one elsewhere may be another's.
func removeKeyLeftovers(dir string, log *slog.Logger, keyFiles ...string) {
	for _, f := range keyFiles {
		if filepath.Clean(filepath.Dir(f)) != filepath.Clean(dir) {
			continue
		}
		removed, err := smallfile.RemoveLeftovers(f)
		for _, r := range removed {
			log.Info("removed the temporary file of a key file write cut short", "file", r)
		}
		if err != nil {
			log.Warn("could not remove the temporary files of a key file write cut short", "err", err)
		}
	}
}
