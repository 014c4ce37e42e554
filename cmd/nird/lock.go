package main

import (
	"errors"
	"fmt"

	"github.com/introreg/nir/internal/datadir"
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
