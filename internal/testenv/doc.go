// Package testenv holds fixtures shared by voicegate's tests: a self-signed
// TLS certificate, a runner for the Node SDK scripts of the e2e project and
// a reader of every cell of an SQLite store.
//
// It is imported only by _test.go files; production code must not use it.
package testenv
