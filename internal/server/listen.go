package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"
)

// ServeOptions configure Serve.
type ServeOptions struct {
	TLSCert, TLSKey string        // both set: serve HTTPS
	ShutdownTimeout time.Duration // bound of the graceful drain; 0 = 10s
	// Timeouts of plain HTTP requests; 0 means the default below. A
	// WebSocket is not bound by them: net/http clears a connection's
	// deadlines when it is hijacked (TestWebSocketOutlivesHTTPTimeouts),
	// and the relay's pings find out a vanished peer instead.
	ReadHeaderTimeout time.Duration // 0 = 10s
	ReadTimeout       time.Duration // whole request, body included; 0 = 30s
	WriteTimeout      time.Duration // from the end of the request headers to the end of the response; 0 = 2m
	IdleTimeout       time.Duration // an idle keep-alive connection is closed after it; 0 = 60s
	MaxHeaderBytes    int           // request line and headers; 0 = 64 KiB
	Logger            *slog.Logger
	// Relay is closed after the HTTP drain: http.Server.Shutdown does not
	// cover hijacked (WebSocket) connections.
	Relay Relay
}

// Serve runs h on ln until ctx is done, then shuts down gracefully: stop
// accepting, drain HTTP requests, close live sessions with 1001.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, o ServeOptions) error {
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: cmp.Or(o.ReadHeaderTimeout, 10*time.Second),
		ReadTimeout:       cmp.Or(o.ReadTimeout, 30*time.Second),
		WriteTimeout:      cmp.Or(o.WriteTimeout, 2*time.Minute),
		IdleTimeout:       cmp.Or(o.IdleTimeout, 60*time.Second),
		MaxHeaderBytes:    cmp.Or(o.MaxHeaderBytes, 64<<10),
		ErrorLog:          slog.NewLogLogger(o.Logger.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	relayDone := make(chan error, 1)
	if o.Relay != nil {
		srv.RegisterOnShutdown(func() {
			sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
			defer cancel()
			relayDone <- o.Relay.Shutdown(sctx)
		})
	} else {
		relayDone <- nil
	}
	errc := make(chan error, 1)
	go func() { // owner: Serve; exits when srv is shut down
		var err error
		if o.TLSCert != "" {
			err = srv.ServeTLS(ln, o.TLSCert, o.TLSKey)
		} else {
			err = srv.Serve(ln)
		}
		errc <- err
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), o.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	select {
	case rerr := <-relayDone:
		err = errors.Join(err, rerr)
	case <-sctx.Done():
		err = errors.Join(err, errors.New("serve: relay shutdown timed out"))
	}
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
