package auth

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/voicegate/voicegate/internal/store"
	"github.com/voicegate/voicegate/internal/token"
)

// CreateKey mints an app key, stores only its hash and returns the secret,
// which must be shown once to the operator and never again. rand nil uses
// crypto/rand.
func CreateKey(ctx context.Context, keys store.Keys, rnd io.Reader, now time.Time, name string, tiers []string) (token.Token, *store.AppKey, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	tok, err := token.NewAppKey(rnd)
	if err != nil {
		return "", nil, err
	}
	var idb [8]byte
	if _, err := io.ReadFull(rnd, idb[:]); err != nil {
		return "", nil, fmt.Errorf("auth: key id: %w", err)
	}
	s := tok.Reveal()
	k := &store.AppKey{
		ID:        "key_" + hex.EncodeToString(idb[:]),
		Hash:      tok.Hash(),
		Hint:      token.AppKeyPrefix + "…" + s[len(s)-4:],
		Name:      name,
		Tiers:     tiers,
		CreatedAt: now.UTC(),
	}
	if err := keys.CreateKey(ctx, k); err != nil {
		return "", nil, fmt.Errorf("auth: store app key: %w", err)
	}
	return tok, k, nil
}
