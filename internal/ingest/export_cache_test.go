package ingest

import "github.com/introreg/nir/eventstore"

// CachedHistoryForTest returns the history the append path's cache keeps for key, and whether
// it keeps one, leaving it cached.
func (s *Service) CachedHistoryForTest(key string) ([]eventstore.Stored, bool) {
	h, _, ok := s.cache.get(key)
	return h, ok
}
