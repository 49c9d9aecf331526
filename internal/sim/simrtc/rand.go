package simrtc

import "math/rand/v2"

// RTP sequence numbers and timestamps start at random values (RFC 3550 §5.1);
// they need not be unpredictable, so math/rand is enough.
func randUint16() uint16 { return uint16(rand.Uint32()) }
func randUint32() uint32 { return rand.Uint32() }
