package demo

// crockford is the ULID alphabet (Crockford base32 without I, L, O, U).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ulid returns the canonical 26-character ULID of a 48-bit millisecond time and 80 bits
// of randomness taken from r1 (16 bits) and r2 (64 bits).
func ulid(ms, r1, r2 uint64) string {
	// The 128-bit value as hi:lo: 48 bits of time, then 80 random bits.
	hi := ms<<16 | r1&0xffff
	lo := r2
	var b [26]byte
	for i := 25; i >= 0; i-- {
		b[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(b[:])
}
