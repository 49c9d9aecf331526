package main

import (
	"context"
	"errors"
)

// TODO(gateway): replace with the real command.
func cmdKeys(context.Context, env, []string) error { return errors.New("keys: not built yet") }
