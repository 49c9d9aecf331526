package main

import (
	"crypto/tls"
	"net/http"
	"strings"
	"testing"

	"github.com/voicegate/voicegate/internal/testenv"
)

func TestServeTLS(t *testing.T) {
	c := testenv.SelfSignedCert(t, t.TempDir())
	cert, key, pool := c.CertFile, c.KeyFile, c.Pool
	p := start(t, map[string]string{"OPENAI_API_KEY": "sk-test"}, "serve", "--addr", "127.0.0.1:0", "--store", "memory",
		"--tls-cert", cert, "--tls-key", key, "--upstream", "http://127.0.0.1:9/v1")
	if !strings.HasPrefix(p.base, "https://") {
		t.Fatalf("base %q", p.base)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(p.base + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz over TLS: %d", resp.StatusCode)
	}
	if strings.Contains(p.stderr.String(), "sk-test") {
		t.Error("server key in logs")
	}
}
