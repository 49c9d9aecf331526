package main

import (
	"context"
	"errors"
)

// TODO(sim): replace with the real command.
func cmdSim(context.Context, env, []string) error { return errors.New("sim: not built yet") }
