package main

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

//go:embed relay.cjs
var relayJS []byte

// target is one system under test in front of the simulator.
type target struct {
	Name  string
	About string
	ep    endpoint
	okURL string // nginx: the "return 200" location (mint reference)
	// debugAddr: voicegate's --debug-addr (Go profiles); empty otherwise.
	debugAddr string
	cmd       *exec.Cmd
	done      chan struct{}
	log       *bytes.Buffer
}

func (t *target) pid() int {
	if t.cmd == nil || t.cmd.Process == nil {
		return 0
	}
	return t.cmd.Process.Pid
}

// stop ends the target's process (SIGTERM, then SIGKILL after 5 s).
func (t *target) stop() {
	if t.cmd == nil || t.cmd.Process == nil {
		return
	}
	_ = t.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-t.done:
	case <-time.After(5 * time.Second):
		_ = t.cmd.Process.Kill()
		<-t.done
	}
}

// env is what starting targets needs.
type env struct {
	dir      string // temp dir for configs, databases, binaries
	repo     string // module root (e2e/node_modules)
	simAddr  string
	simKey   string
	adminKey string
	vgBin    string
	stderr   io.Writer
}

const model = "gpt-realtime"

func (e *env) wsURL(addr string) string {
	return "ws://" + addr + "/v1/realtime?model=" + model
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// spawn starts a child process and waits until addr accepts connections.
func spawn(name, addr string, cmd *exec.Cmd) (*target, error) {
	t := &target{Name: name, cmd: cmd, done: make(chan struct{}), log: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = t.log, t.log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	go func() { _ = cmd.Wait(); close(t.done) }() // owner: t; exits with the process
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-t.done:
			return nil, fmt.Errorf("%s exited at start: %s", name, strings.TrimSpace(t.log.String()))
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return t, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.stop()
	return nil, fmt.Errorf("%s did not listen on %s within 20 s: %s", name, addr, t.log.String())
}

func (e *env) direct() (*target, error) {
	return &target{Name: "direct", About: "client → simulator", ep: endpoint{url: e.wsURL(e.simAddr), simKey: e.simKey}}, nil
}

func (e *env) splice() (*target, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	t, err := spawn("splice", addr, exec.Command(self, "splice", addr, e.simAddr))
	if err != nil {
		return nil, err
	}
	t.About = "Go TCP splice (io.Copy both ways, splice(2) on Linux), a child process"
	t.ep = endpoint{url: e.wsURL(addr), simKey: e.simKey}
	return t, nil
}

// nginxBin finds nginx, installing the Debian package when it is missing.
func nginxBin(stderr io.Writer) (string, error) {
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if b, err := exec.LookPath(p); err == nil {
			return b, nil
		}
	}
	fmt.Fprintln(stderr, "vgbench: nginx missing; apt-get install -y nginx")
	cmd := exec.Command("apt-get", "install", "-y", "-q", "nginx")
	if os.Getuid() != 0 {
		cmd = exec.Command("sudo", "apt-get", "install", "-y", "-q", "nginx")
	}
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("apt-get install nginx: %w", err)
	}
	return exec.LookPath("/usr/sbin/nginx")
}

const nginxConf = `daemon off;
master_process on;
worker_processes auto;
pid {{dir}}/nginx.pid;
error_log {{dir}}/nginx-error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    client_body_temp_path {{dir}}/ngx-body;
    proxy_temp_path {{dir}}/ngx-proxy;
    fastcgi_temp_path {{dir}}/ngx-fcgi;
    uwsgi_temp_path {{dir}}/ngx-uwsgi;
    scgi_temp_path {{dir}}/ngx-scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    server {
        listen {{addr}} backlog=4096;
        location = /ok { return 200 "ok"; }
        location / {
            proxy_pass http://{{upstream}};
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_read_timeout 1h;
            proxy_send_timeout 1h;
            proxy_buffering off;
        }
    }
}
`

// nginx starts nginx as a plain WebSocket proxy to upstream (and
// answering GET /ok with "return 200", the mint reference).
func (e *env) nginx(upstream string) (*target, error) {
	bin, err := nginxBin(e.stderr)
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp(e.dir, "nginx-")
	if err != nil {
		return nil, err
	}
	conf := strings.NewReplacer("{{dir}}", dir, "{{addr}}", addr, "{{upstream}}", upstream).Replace(nginxConf)
	if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	t, err := spawn("nginx", addr, exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "nginx-error.log")))
	if err != nil {
		return nil, err
	}
	v, _ := exec.Command(bin, "-v").CombinedOutput()
	t.About = strings.TrimSpace(string(v)) + ", worker_processes auto, proxy_buffering off"
	t.ep = endpoint{url: e.wsURL(addr), simKey: e.simKey}
	t.okURL = "http://" + addr + "/ok"
	return t, nil
}

// node starts the ws relay; mode is "forward" or "parse".
func (e *env) node(mode string) (*target, error) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return nil, errors.New("node is not installed")
	}
	mods := filepath.Join(e.repo, "e2e", "node_modules")
	wsPkg, err := os.ReadFile(filepath.Join(mods, "ws", "package.json"))
	if err != nil {
		return nil, fmt.Errorf("ws not installed in e2e/node_modules (cd e2e && npm ci): %w", err)
	}
	script := filepath.Join(e.dir, "relay.cjs")
	if err := os.WriteFile(script, relayJS, 0o644); err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(nodeBin, script, port, "ws://"+e.simAddr, mode)
	cmd.Env = append(os.Environ(), "NODE_PATH="+mods)
	t, err := spawn("node-"+mode, addr, cmd)
	if err != nil {
		return nil, err
	}
	ver, _ := exec.Command(nodeBin, "--version").Output()
	t.About = fmt.Sprintf("Node %s, ws %s (e2e/package-lock.json), %s", strings.TrimSpace(string(ver)), jsonVersion(wsPkg), map[string]string{
		"forward": "forwarding only", "parse": "JSON.parse of every frame"}[mode])
	t.ep = endpoint{url: e.wsURL(addr), simKey: e.simKey}
	return t, nil
}

func jsonVersion(pkg []byte) string {
	i := bytes.Index(pkg, []byte(`"version"`))
	if i < 0 {
		return "?"
	}
	f := strings.Split(string(pkg[i:]), `"`)
	if len(f) > 3 {
		return f[3]
	}
	return "?"
}

// vgConfig has a pass-through tier (no budgets, rates or concurrency
// caps: only the firewall, session records and metering) and a governed
// tier with every governance mechanism on (budgets per session, user-day,
// user-month; per-session event and response rates; per-user
// concurrency), its limits set high enough that the load is never
// refused.
const vgConfig = `tiers:
  pass:
    max_session_seconds: 3600
    max_concurrent: 0
  governed:
    max_session_seconds: 3600
    budget:
      session_usd: 100
      user_day_usd: 1000
      user_month_usd: 10000
    concurrency:
      per_user: 2
    rates:
      mints_per_user_per_minute: 10
      connects_per_user_per_minute: 20
      events_per_second: 200
      responses_per_minute: 100000
`

// voicegate starts `voicegate serve` with store (e.g. "sqlite:…",
// "memory", "redis://…") in front of the simulator; tier selects the
// tier clients mint for; extra flags are added to serve's.
func (e *env) voicegate(name, tier, store string, extra ...string) (*target, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	debugAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(e.dir, "voicegate.yaml")
	if err := os.WriteFile(cfg, []byte(vgConfig), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(e.vgBin, "serve", "--addr", addr, "--store", store, "--config", cfg,
		"--upstream", "http://"+e.simAddr+"/v1", "--admin-key", e.adminKey, "--log-level", "error",
		"--instance", name, "--spool-dir", filepath.Join(e.dir, "spool-"+name), "--debug-addr", debugAddr)
	cmd.Args = append(cmd.Args, extra...)
	cmd.Env = append(os.Environ(), "OPENAI_API_KEY="+e.simKey)
	t, err := spawn(name, addr, cmd)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP("http://" + addr + "/readyz"); err != nil {
		t.stop()
		return nil, err
	}
	t.ep = endpoint{url: e.wsURL(addr), mintURL: "http://" + addr + "/v1/realtime/client_secrets", admin: e.adminKey, tier: tier}
	t.debugAddr = debugAddr
	return t, nil
}

func waitHTTP(url string) error {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready within 20 s", url)
}

// buildVoicegate builds cmd/voicegate into dir.
func buildVoicegate(ctx context.Context, repo, dir string) (string, error) {
	bin := filepath.Join(dir, "voicegate")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/voicegate")
	cmd.Dir = repo
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/voicegate: %v: %s", err, out)
	}
	return bin, nil
}

// spliceMain is the "splice" subcommand: a TCP relay from listen to
// upstream with io.Copy both ways (splice(2) between TCP sockets on
// Linux): the floor of any relay in user space.
func spliceMain(listen, upstream string) error {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return err
		}
		go func() { // owner: this connection; ends when either side closes
			defer c.Close()
			u, err := net.Dial("tcp", upstream)
			if err != nil {
				return
			}
			defer u.Close()
			done := make(chan struct{}, 2)
			go func() { _, _ = io.Copy(u, c); done <- struct{}{} }()
			go func() { _, _ = io.Copy(c, u); done <- struct{}{} }()
			<-done
		}()
	}
}

var _ = strconv.Itoa
