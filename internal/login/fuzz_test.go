package login

import (
	"context"
	"errors"
	"testing"
	"time"
)

// FuzzJWTVerify: no input panics, and nothing but a token signed with the
// configured secret is accepted.
func FuzzJWTVerify(f *testing.F) {
	a, err := NewJWT(JWTConfig{HS256Secret: secret, Now: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("..")
	f.Add("eyJhbGciOiJIUzI1NiJ9.e30.AAAA")
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := a.Verify(context.Background(), tok)
		if err == nil {
			t.Fatalf("accepted forged token %q as %+v", tok, id)
		}
		if !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("err = %v, want ErrUnauthenticated", err)
		}
	})
}
