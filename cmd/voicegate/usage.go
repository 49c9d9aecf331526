package main

import (
	"context"
	"errors"
)

// TODO(gateway): replace with the real command.
func cmdUsage(context.Context, env, []string) error { return errors.New("usage: not built yet") }
