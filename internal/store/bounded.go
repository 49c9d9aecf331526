package store

import (
	"strings"
	"unicode/utf8"
)

// Bounds of one audit entry. Much of what an entry records comes from an
// untrusted party (a refused event's type, a user name, a request path), so
// every backend bounds an entry before it writes it: one entry costs at most
// a few kilobytes whatever the client sent.
const (
	// MaxAuditString is the longest string an entry keeps, in bytes; a
	// longer one is cut at a rune boundary and ends with "…".
	MaxAuditString = 128
	// MaxAuditItems is the most members a detail map or list keeps.
	MaxAuditItems = 32
	// maxAuditDepth is how deep detail values nest before they are dropped.
	maxAuditDepth = 4
)

// Bounded returns e with every string field and every string in Detail cut
// to MaxAuditString bytes and sanitised (control characters and invalid
// UTF-8 replaced), maps and lists in Detail cut to MaxAuditItems members,
// and nesting below four levels dropped. Detail is copied, never modified in
// place. Every Audit implementation applies it in AppendAudit.
func (e AuditEntry) Bounded() AuditEntry {
	e.Kind = Sanitize(e.Kind, MaxAuditString)
	e.SessionID = Sanitize(e.SessionID, MaxAuditString)
	e.User = Sanitize(e.User, 2*MaxAuditString) // user names may be 256 bytes
	e.AppKeyID = Sanitize(e.AppKeyID, MaxAuditString)
	e.Tier = Sanitize(e.Tier, MaxAuditString)
	e.Instance = Sanitize(e.Instance, MaxAuditString)
	if e.Detail != nil {
		e.Detail, _ = boundValue(e.Detail, 0).(map[string]any)
	}
	return e
}

func boundValue(v any, depth int) any {
	if depth >= maxAuditDepth {
		return "…"
	}
	switch v := v.(type) {
	case string:
		return Sanitize(v, MaxAuditString)
	case []string:
		out := make([]string, 0, min(len(v), MaxAuditItems))
		for _, s := range v[:min(len(v), MaxAuditItems)] {
			out = append(out, Sanitize(s, MaxAuditString))
		}
		return out
	case []any:
		out := make([]any, 0, min(len(v), MaxAuditItems))
		for _, x := range v[:min(len(v), MaxAuditItems)] {
			out = append(out, boundValue(x, depth+1))
		}
		return out
	case map[string]any:
		out := make(map[string]any, min(len(v), MaxAuditItems))
		for k, x := range v {
			if len(out) == MaxAuditItems {
				break
			}
			out[Sanitize(k, MaxAuditString)] = boundValue(x, depth+1)
		}
		return out
	}
	// Numbers, booleans, and the gateway's own typed values (usage,
	// limits): bounded by their type.
	return v
}

// Sanitize returns s cut to at most n bytes at a rune boundary (ending with
// "…" when cut), with control characters and invalid UTF-8 replaced by
// U+FFFD, so it can go into an audit row or a log line as is.
func Sanitize(s string, n int) string {
	clean := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean && len(s) <= n {
		return s
	}
	const ellipsis = "…"
	var b strings.Builder
	b.Grow(min(len(s), n))
	keep := 0 // the longest prefix that leaves room for the ellipsis
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			r = utf8.RuneError
		}
		l := utf8.RuneLen(r)
		if b.Len()+l > n {
			return b.String()[:keep] + ellipsis
		}
		if b.Len()+l <= n-len(ellipsis) {
			keep = b.Len() + l
		}
		b.WriteRune(r)
	}
	return b.String()
}
