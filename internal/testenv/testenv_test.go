package testenv

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
)

// TestSelfSignedCert: the written files load as a key pair, and a client
// trusting Pool completes a TLS handshake with a server using TLS, by IP
// and by name.
func TestSelfSignedCert(t *testing.T) {
	dir := t.TempDir()
	c := SelfSignedCert(t, dir)
	if c.CertFile != filepath.Join(dir, "cert.pem") || c.KeyFile != filepath.Join(dir, "key.pem") {
		t.Fatalf("files %s %s", c.CertFile, c.KeyFile)
	}
	if _, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile); err != nil {
		t.Fatalf("load written pair: %v", err)
	}
	if b, err := os.ReadFile(c.CertFile); err != nil || string(b) != string(c.CertPEM) {
		t.Fatalf("cert file differs from CertPEM: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{c.TLS}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake below
	srv.StartTLS()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: c.Pool}}}
	defer client.CloseIdleConnections()
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	for _, host := range []string{"127.0.0.1", "localhost"} {
		resp, err := client.Get("https://" + host + ":" + port)
		if err != nil {
			t.Fatalf("%s: %v", host, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != "ok" {
			t.Fatalf("%s: body %q", host, b)
		}
	}
	// A client that does not trust the certificate is refused.
	if _, err := (&http.Client{}).Get(srv.URL); err == nil {
		t.Fatal("untrusted client completed the handshake")
	}
}

// TestNodeDir finds the e2e project from a package directory.
func TestNodeDir(t *testing.T) {
	dir, err := NodeDir()
	if err != nil {
		t.Skipf("node project unavailable: %v", err)
	}
	if filepath.Base(dir) != "e2e" || !filepath.IsAbs(dir) {
		t.Fatalf("NodeDir = %q", dir)
	}
	if _, err := os.Stat(filepath.Join(dir, "package.json")); err != nil {
		t.Fatal(err)
	}
}
