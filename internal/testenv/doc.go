// Package testenv holds fixtures shared by voicegate's tests: a self-signed
// TLS certificate and a runner for the Node SDK scripts of the e2e project.
//
// It is imported only by _test.go files; production code must not use it.
package testenv
