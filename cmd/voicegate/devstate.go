package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/voicegate/voicegate/internal/config"
)

// Files voicegate dev keeps beside its SQLite database, so a restart keeps
// its admin key and the certificate clients were told to trust.
const (
	devAdminKeyFile = "voicegate-dev-admin-key"
	devCertFile     = "voicegate-dev-cert.pem"
	devKeyFile      = "voicegate-dev-key.pem"
)

// devStateDir is where dev keeps its files: the directory of a SQLite
// store, or "" for a memory store (nothing persists; the caller uses a
// temporary directory). A Redis store keeps them in the working directory.
func devStateDir(store string) (string, error) {
	kind, loc, err := config.ParseStore(store)
	if err != nil {
		return "", err
	}
	switch kind {
	case "sqlite":
		if strings.HasPrefix(loc, "file:") || strings.Contains(loc, "?") {
			loc = strings.TrimPrefix(strings.SplitN(loc, "?", 2)[0], "file:")
		}
		return filepath.Abs(filepath.Dir(loc))
	case "memory":
		return "", nil
	}
	return filepath.Abs(".")
}

// devAdminKey returns the admin key kept in dir, creating it (0600) on the
// first start. The key is at least config.MinAdminKeyLen characters.
func devAdminKey(dir string) (string, error) {
	path := filepath.Join(dir, devAdminKeyFile)
	data, err := os.ReadFile(path)
	switch {
	case err == nil:
		if k := strings.TrimSpace(string(data)); len(k) >= config.MinAdminKeyLen {
			return k, nil
		}
		return "", fmt.Errorf("%s: not an admin key of at least %d characters; delete it to get a new one", path, config.MinAdminKeyLen)
	case !errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("read dev admin key: %w", err)
	}
	k := "vgadmin_" + randomHex(24)
	if err := writeNew(path, []byte(k+"\n")); err != nil {
		return "", fmt.Errorf("keep dev admin key: %w", err)
	}
	return k, nil
}

// writeNew creates path with mode 0600 and data; it fails if path exists,
// so two dev processes starting together keep one key.
func writeNew(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// devCert returns the certificate and key files of dev's self-signed
// certificate in dir, making them when they are missing, expire within a
// day, or do not cover host (the --addr host). The certificate is its own
// CA, so a client trusts it with NODE_EXTRA_CA_CERTS=<cert file>.
func devCert(dir, host string, now time.Time) (certFile, keyFile string, err error) {
	certFile, keyFile = filepath.Join(dir, devCertFile), filepath.Join(dir, devKeyFile)
	if devCertUsable(certFile, keyFile, host, now) {
		return certFile, keyFile, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return "", "", err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "voicegate dev"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	if ip := net.ParseIP(host); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
	} else if ip == nil && host != "" && host != "localhost" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	// The key first: a certificate without its key is never left behind.
	for _, f := range []struct {
		path string
		data []byte
	}{
		{keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})},
		{certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})},
	} {
		tmp := f.path + ".tmp"
		if err := os.WriteFile(tmp, f.data, 0o600); err != nil {
			return "", "", fmt.Errorf("write %s: %w", tmp, err)
		}
		if err := os.Rename(tmp, f.path); err != nil {
			return "", "", fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return certFile, keyFile, nil
}

// devCertUsable reports whether the kept pair loads, is valid for another
// day and covers host.
func devCertUsable(certFile, keyFile, host string, now time.Time) bool {
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil || len(pair.Certificate) == 0 {
		return false
	}
	c, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil || now.Add(24*time.Hour).After(c.NotAfter) {
		return false
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && (ip.IsUnspecified() || ip.IsLoopback())) {
		return true
	}
	return c.VerifyHostname(host) == nil
}
