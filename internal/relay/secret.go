package relay

import "log/slog"

// Secret is the server's upstream API key. It formats and logs as
// "REDACTED"; only string(s) yields the key, where the dial needs it.
type Secret string

// String hides the key from fmt's %s and %v.
func (Secret) String() string { return "REDACTED" }

// GoString hides the key from %#v.
func (Secret) GoString() string { return "REDACTED" }

// LogValue hides the key from slog.
func (Secret) LogValue() slog.Value { return slog.StringValue("REDACTED") }
