package admin

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Timeouts of the server Serve runs. There is no write timeout: an audit
// export streams for as long as the log takes, and a revoke may wait for
// its connectors.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = time.Minute
	idleTimeout       = 2 * time.Minute
	// ShutdownTimeout bounds how long Serve waits for calls in flight once
	// its context ends.
	ShutdownTimeout = 10 * time.Second
)

// Serve serves h on ln until ctx ends, then shuts the server down, letting
// calls in flight finish for up to ShutdownTimeout, and returns nil. It
// returns the server's error if it stops for another reason. It closes ln.
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		return fmt.Errorf("admin api: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = srv.Close() // calls still running are cut off
	}
	if serr := <-done; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("admin api: shut down: %w", err)
	}
	return nil
}

// ListenAndServe listens on addr (host:port) and serves h there as Serve
// does, until ctx ends.
func ListenAndServe(ctx context.Context, addr string, h http.Handler) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("admin api: listen on %s: %w", addr, err)
	}
	return Serve(ctx, ln, h)
}
