// Package store holds voicegate's domain records and the storage interfaces
// every backend implements: sessions, app keys, the usage ledger, the audit
// trail, the rate limiter, concurrency leases, budget reservations and the
// revocation bus.
//
// The package depends on nothing but the standard library. Backends live in
// sub-packages (memory, sqlite, redis) and are all checked by the one
// conformance suite in storetest.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"time"
)

// Errors returned by every implementation. Callers test them with errors.Is.
var (
	// ErrNotFound: no record with that id or hash.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict: a record with that id already exists.
	ErrConflict = errors.New("store: conflict")
	// ErrUnavailable wraps a backend failure (Redis down, disk error) so the
	// HTTP layer can fail closed with 503.
	ErrUnavailable = errors.New("store: unavailable")
)

// Session states.
const (
	StateMinted  = "minted"  // token issued, never connected
	StateLive    = "live"    // a connection is open
	StateIdle    = "idle"    // connected before, no connection now, token still valid
	StateEnded   = "ended"   // closed for good (expired, budget, duration)
	StateRevoked = "revoked" // revoked by an operator
)

// Limits are the governing limits of one session after tier and mint
// narrowing. Zero means "no limit" for every field.
type Limits struct {
	MaxSessionSeconds  int   `json:"max_session_seconds,omitempty"`
	IdleTimeoutSeconds int   `json:"idle_timeout_seconds,omitempty"`
	BudgetNanoUSD      int64 `json:"budget_nanousd,omitempty"`
	MaxConcurrent      int   `json:"max_concurrent,omitempty"`
}

// Session is one minted voice session. The token itself is never stored:
// TokenHash is the hex SHA-256 of it.
type Session struct {
	ID        string `json:"id"`         // "vgs_…", public
	TokenHash string `json:"-"`          // hex sha256 of the ek_vg_ token
	TokenID   string `json:"token_id"`   // short, non-secret id for logs
	User      string `json:"user"`       // end-user identity ("" if none)
	Tier      string `json:"tier"`       // tier name
	AppKeyID  string `json:"app_key_id"` // "" when minted by admin or user login
	Model     string `json:"model"`

	// Config is the pinned GA session config (the "session" object of
	// client_secrets), validated at mint.
	Config json.RawMessage `json:"config,omitempty"`
	Limits Limits          `json:"limits"`

	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"` // deadline to connect

	State     string    `json:"state"`
	Transport string    `json:"transport,omitempty"` // "websocket" | "webrtc"
	StartedAt time.Time `json:"started_at,omitzero"` // first connect
	EndedAt   time.Time `json:"ended_at,omitzero"`
	// LiveSeconds is the connected time of earlier connections; reconnects
	// count against the same max_session_seconds.
	LiveSeconds float64   `json:"live_seconds"`
	EndReason   string    `json:"end_reason,omitempty"` // close reason code
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
}

// SessionFilter selects sessions; zero fields match everything.
type SessionFilter struct {
	User     string
	AppKeyID string
	State    string
	Since    time.Time
	// Before, when set, keeps sessions created strictly before it: the
	// cursor of the next page (lists are newest first).
	Before time.Time
	Limit  int // 0 = implementation default (100)
}

// AppKey is an application credential ("vgk_…"), stored hashed.
type AppKey struct {
	ID        string    `json:"id"`   // "key_…", public
	Hash      string    `json:"-"`    // hex sha256 of the full key
	Hint      string    `json:"hint"` // "vgk_…abcd", safe to show
	Name      string    `json:"name"`
	Tiers     []string  `json:"tiers"` // tiers it may mint for; empty = default tier only
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// Usage mirrors OpenAI's response.usage, flattened to what cost needs.
type Usage struct {
	TotalTokens       int64 `json:"total_tokens"`
	InputTokens       int64 `json:"input_tokens"`
	OutputTokens      int64 `json:"output_tokens"`
	InputTextTokens   int64 `json:"input_text_tokens"`
	InputAudioTokens  int64 `json:"input_audio_tokens"`
	InputImageTokens  int64 `json:"input_image_tokens"`
	CachedTokens      int64 `json:"cached_tokens"`
	CachedTextTokens  int64 `json:"cached_text_tokens"`
	CachedAudioTokens int64 `json:"cached_audio_tokens"`
	CachedImageTokens int64 `json:"cached_image_tokens"`
	OutputTextTokens  int64 `json:"output_text_tokens"`
	OutputAudioTokens int64 `json:"output_audio_tokens"`
	// AudioSeconds is the billed input audio of a duration-billed
	// transcription (e.g. whisper-1), in whole seconds; 0 otherwise.
	AudioSeconds int64 `json:"audio_seconds,omitempty"`
}

// Add returns u + v field by field.
func (u Usage) Add(v Usage) Usage {
	return Usage{
		TotalTokens:       u.TotalTokens + v.TotalTokens,
		InputTokens:       u.InputTokens + v.InputTokens,
		OutputTokens:      u.OutputTokens + v.OutputTokens,
		InputTextTokens:   u.InputTextTokens + v.InputTextTokens,
		InputAudioTokens:  u.InputAudioTokens + v.InputAudioTokens,
		InputImageTokens:  u.InputImageTokens + v.InputImageTokens,
		CachedTokens:      u.CachedTokens + v.CachedTokens,
		CachedTextTokens:  u.CachedTextTokens + v.CachedTextTokens,
		CachedAudioTokens: u.CachedAudioTokens + v.CachedAudioTokens,
		CachedImageTokens: u.CachedImageTokens + v.CachedImageTokens,
		OutputTextTokens:  u.OutputTextTokens + v.OutputTextTokens,
		OutputAudioTokens: u.OutputAudioTokens + v.OutputAudioTokens,
		AudioSeconds:      u.AudioSeconds + v.AudioSeconds,
	}
}

// LedgerTranscription is the Kind of a ledger entry that meters one input
// audio transcription; its ResponseID is "transcription:<item_id>".
const LedgerTranscription = "transcription"

// TranscriptionResponseID is the ResponseID of the ledger entry of the
// transcription of input item itemID. The prefix cannot collide with an
// upstream response id ("resp_…").
func TranscriptionResponseID(itemID string) string { return LedgerTranscription + ":" + itemID }

// LedgerEntry is the metered usage of one upstream response or input
// audio transcription. The pair (SessionID, ResponseID) is unique: it is
// recorded exactly once.
type LedgerEntry struct {
	SessionID  string `json:"session_id"`
	ResponseID string `json:"response_id"`
	// Kind is "" for a response and LedgerTranscription for an input
	// audio transcription.
	Kind        string    `json:"kind,omitempty"`
	User        string    `json:"user"`
	AppKeyID    string    `json:"app_key_id"`
	Tier        string    `json:"tier"`
	Model       string    `json:"model"`
	Status      string    `json:"status"` // response status: completed, cancelled, …
	Usage       Usage     `json:"usage"`
	CostNanoUSD int64     `json:"cost_nanousd"`
	At          time.Time `json:"at"`
}

// LedgerFilter selects ledger entries; zero fields match everything.
type LedgerFilter struct {
	SessionID string
	User      string
	AppKeyID  string
	Since     time.Time // inclusive
	Until     time.Time // exclusive
}

// AuditEntry is one append-only audit record. Detail never holds a secret.
type AuditEntry struct {
	Seq       int64          `json:"seq"` // assigned by the store, increasing
	At        time.Time      `json:"at"`
	Kind      string         `json:"kind"` // mint, connect, disconnect, revoke, auth_refused, session_update, refused, limit
	SessionID string         `json:"session_id,omitempty"`
	User      string         `json:"user,omitempty"`
	AppKeyID  string         `json:"app_key_id,omitempty"`
	Tier      string         `json:"tier,omitempty"`
	Instance  string         `json:"instance,omitempty"`
	Detail    map[string]any `json:"detail,omitempty"`
}

// PermanentAuditKinds are the audit records a retention never prunes:
// sessions minted and ended, revocations and app keys created. Every other
// kind (refusals, limits, failed logins, connects, session updates) is
// pruned once older than the audit retention.
var PermanentAuditKinds = []string{"mint", "disconnect", "revoke", "key_create"}

// AuditFilter selects audit entries; zero fields match everything.
type AuditFilter struct {
	Kind      string
	SessionID string
	User      string
	AppKeyID  string // applied before Limit, like every field
	Since     time.Time
	Until     time.Time
	AfterSeq  int64 // a cursor: the Seq of the last entry of the previous page
	// BeforeSeq, when > 0, keeps entries with Seq < BeforeSeq: the cursor
	// of the next page of a Newest listing.
	BeforeSeq int64
	// Newest lists newest first, Limit keeping the newest matches;
	// otherwise oldest first, Limit keeping the oldest.
	Newest bool
	Limit  int // 0 = implementation default (1000)
}

// Limit is a GCRA rate: Rate events per Period, with bursts of Burst.
type Limit struct {
	Rate   int
	Period time.Duration
	Burst  int
}

// PerSecond, PerMinute build a Limit with burst equal to the rate.
func PerSecond(n int) Limit { return Limit{Rate: n, Period: time.Second, Burst: n} }
func PerMinute(n int) Limit { return Limit{Rate: n, Period: time.Minute, Burst: n} }

// LimitResult answers the caller's next question after Allow.
type LimitResult struct {
	Allowed    bool
	Remaining  int
	RetryAfter time.Duration // > 0 when not allowed
	ResetAfter time.Duration
}

// BudgetAccount is one budget a reservation is charged against, e.g.
// "session:vgs_…", "user:day:alice:2026-11-29", "key:month:key_…:2026-11".
type BudgetAccount struct {
	Key       string
	LimitNano int64     // the account's budget in nano-dollars; 0 = unlimited
	ExpiresAt time.Time // when the account's window ends (for TTLs)
}

// Reservation asks to hold between Min and Want nano-dollars on every account.
type Reservation struct {
	ID string // unique per reservation (e.g. session id + sequence)
	// Session is the id of the session that owns the reservation, so its
	// holds can be found and settled after the process that made them died
	// (SessionHolds); "" for a reservation with no session.
	Session  string
	Accounts []BudgetAccount
	Want     int64
	Min      int64
}

// Hold is an open reservation: granted, not yet settled, not yet expired.
type Hold struct {
	ID       string   // the reservation id
	Amount   int64    // nano-dollars held on each account (the grant)
	Accounts []string // keys of the accounts it holds on, sorted
}

// ReserveResult says how much was granted (0 when refused) and what is left
// on the tightest account after the grant.
type ReserveResult struct {
	Granted   int64
	Remaining int64
}

// Revocation is a message on the revocation bus.
type Revocation struct {
	Kind string    `json:"kind"` // "session" | "user" | "app_key"
	ID   string    `json:"id"`   // session id, user, or app key id
	At   time.Time `json:"at"`
}

// Sessions stores minted sessions.
type Sessions interface {
	CreateSession(ctx context.Context, s *Session) error
	Session(ctx context.Context, id string) (*Session, error)
	SessionByTokenHash(ctx context.Context, hash string) (*Session, error)
	ListSessions(ctx context.Context, f SessionFilter) ([]*Session, error)
	// UpdateSession applies fn to the stored session atomically and stores
	// the result; fn's error aborts the update and is returned.
	UpdateSession(ctx context.Context, id string, fn func(*Session) error) (*Session, error)
	// RevokeUser records that every session of user created at or before at
	// is revoked; UserRevokedAt reports the latest such time (zero if none).
	RevokeUser(ctx context.Context, user string, at time.Time) error
	UserRevokedAt(ctx context.Context, user string) (time.Time, error)
}

// Keys stores app keys.
type Keys interface {
	CreateKey(ctx context.Context, k *AppKey) error
	Key(ctx context.Context, id string) (*AppKey, error)
	KeyByHash(ctx context.Context, hash string) (*AppKey, error)
	ListKeys(ctx context.Context) ([]*AppKey, error)
	RevokeKey(ctx context.Context, id string, at time.Time) error
}

// Ledger stores one entry per upstream response.
type Ledger interface {
	// RecordUsage stores e unless (e.SessionID, e.ResponseID) is already
	// present; inserted reports which.
	RecordUsage(ctx context.Context, e LedgerEntry) (inserted bool, err error)
	LedgerEntries(ctx context.Context, f LedgerFilter) ([]LedgerEntry, error)
}

// Audit is the append-only audit trail.
type Audit interface {
	AppendAudit(ctx context.Context, e AuditEntry) error
	AuditEntries(ctx context.Context, f AuditFilter) ([]AuditEntry, error)
}

// Limiter is a GCRA rate limiter shared by every instance on the store.
type Limiter interface {
	Allow(ctx context.Context, key string, l Limit) (LimitResult, error)
}

// Leases are concurrency slots that expire unless renewed, so an instance
// that dies frees its slots within ttl.
type Leases interface {
	// AcquireLease adds holder under key if fewer than max unexpired holders
	// exist (re-acquiring an existing holder renews it and succeeds).
	AcquireLease(ctx context.Context, key, holder string, max int, ttl time.Duration) (bool, error)
	RenewLease(ctx context.Context, key, holder string, ttl time.Duration) error
	ReleaseLease(ctx context.Context, key, holder string) error
	// LeaseCount reports the unexpired holders under key.
	LeaseCount(ctx context.Context, key string) (int, error)
}

// Budgets hold money with reserve-then-settle so concurrent sessions never
// jointly overspend an account.
type Budgets interface {
	// Reserve atomically grants the largest g in [Min, Want] such that every
	// account has spent+reserved+g <= limit; Granted is 0 when even Min does
	// not fit (nothing is held then).
	Reserve(ctx context.Context, r Reservation) (ReserveResult, error)
	// Settle releases the reservation id and charges actual to each of its
	// accounts. Settling an unknown or already-settled id is a no-op.
	Settle(ctx context.Context, id string, actual int64) error
	// Charge adds amount to the accounts' spend without a reservation (usage
	// that arrived with none, e.g. after a restart).
	Charge(ctx context.Context, accounts []BudgetAccount, amount int64) error
	// Spent reports spent and currently reserved nano-dollars of an account.
	Spent(ctx context.Context, key string) (spent, reserved int64, err error)
	// SessionHolds lists the open (unsettled, unexpired) reservations of
	// session, oldest first, so a recovery job can Settle the holds of a
	// session whose process died.
	SessionHolds(ctx context.Context, session string) ([]Hold, error)
}

// Revocations is the bus on which revocations reach every instance.
type Revocations interface {
	PublishRevocation(ctx context.Context, r Revocation) error
	// SubscribeRevocations delivers every revocation published after the
	// call returns, until ctx is done (then the channel is closed).
	SubscribeRevocations(ctx context.Context) (<-chan Revocation, error)
}

// Store is everything a voicegate instance needs from its backend.
type Store interface {
	Sessions
	Keys
	Ledger
	Audit
	Limiter
	Leases
	Budgets
	Revocations
	// Ping reports whether the backend can be used now (for /readyz and
	// fail-closed checks).
	Ping(ctx context.Context) error
	Close() error
}
