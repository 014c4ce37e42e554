package ingest

import "github.com/introreg/nir/rules"

// FoldedForTest returns the state the history cache keeps folded for key and how many events
// of the person's history it folds (nil, 0: none), leaving it cached.
func (s *Service) FoldedForTest(key string) (*rules.State, int) {
	epoch := s.cache.now()
	st, n, seq := s.cache.takeFolded(key)
	if st != nil {
		s.cache.putFolded(key, st, n, seq, epoch)
	}
	return st, n
}
