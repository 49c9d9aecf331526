// Package deps pins the modules the packages of this repository use while
// they are being written, so that concurrent work agrees on one go.mod.
// It is removed once every dependency is imported by real code.
package deps

import (
	_ "github.com/coder/websocket"
	_ "github.com/goccy/go-yaml"
	_ "github.com/lestrrat-go/jwx/v3/jwt"
	_ "github.com/pion/webrtc/v4"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite"
)
