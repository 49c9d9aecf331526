// Package web holds the pages voicegate serves itself: the demo page at /
// (a placeholder describing the endpoints for now).
package web

import (
	"embed"
	"io/fs"
)

//go:embed static
var files embed.FS

// FS returns the static files, rooted so that index.html is served at /.
func FS() fs.FS {
	sub, err := fs.Sub(files, "static")
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return sub
}
