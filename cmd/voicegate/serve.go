package main

import (
	"context"
	"errors"
)

// TODO(gateway): replace with the real command.
func cmdServe(context.Context, env, []string) error { return errors.New("serve: not built yet") }
