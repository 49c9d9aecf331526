package main

import (
	"context"
	"errors"
)

// TODO(gateway): replace with the real command.
func cmdSessions(context.Context, env, []string) error { return errors.New("sessions: not built yet") }
