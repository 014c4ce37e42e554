package web

// SessionCount is the number of sessions c holds, expired or not.
func SessionCount(c *Console) int {
	c.sess.mu.Lock()
	defer c.sess.mu.Unlock()
	return len(c.sess.byHash)
}
