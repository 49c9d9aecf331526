// Package web holds the pages voicegate serves itself, embedded so the
// binary needs no files, npm or network: the demo page at / (index.html,
// demo.js — the committed esbuild bundle of web/ui, with the Agents SDK)
// and the operator console at /admin/ (admin/index.html, admin.js), both
// styled by style.css.
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
