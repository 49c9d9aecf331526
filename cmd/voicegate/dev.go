package main

import (
	"context"
	"errors"
)

// TODO(gateway): replace with the real command.
func cmdDev(context.Context, env, []string) error { return errors.New("dev: not built yet") }
