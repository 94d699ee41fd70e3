package ldap

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"

	goldap "github.com/go-ldap/ldap/v3"
)

// with runs fn on a bound connection: one kept from an earlier call, or a
// new one. The connection is fn's alone while fn runs, and is closed if
// ctx ends first, so that fn returns then. A kept connection that turns
// out to be broken (the server restarted, or closed it for idling) is
// replaced by a new one and fn run again, once; fn must therefore be safe
// to repeat, as idempotent grants and revokes are.
func (c *Connector) with(ctx context.Context, fn func(*goldap.Conn) error) error {
	for retried := false; ; retried = true {
		conn, kept, err := c.take(ctx)
		if err != nil {
			return err
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		err = fn(conn)
		if !stop() {
			// ctx ended and closed conn, perhaps under fn.
			if err != nil {
				return fmt.Errorf("%w: %w", ctx.Err(), err)
			}
			return nil
		}
		if err != nil && connectionLost(err) || conn.IsClosing() {
			conn.Close()
			if kept && !retried && err != nil {
				continue
			}
			return err
		}
		c.put(conn)
		return err
	}
}

// take returns a kept connection that is still open, and true, or dials a
// new one.
func (c *Connector) take(ctx context.Context) (*goldap.Conn, bool, error) {
	var dead []*goldap.Conn
	defer func() {
		for _, conn := range dead {
			conn.Close()
		}
	}()
	c.mu.Lock()
	for len(c.idle) > 0 {
		conn := c.idle[len(c.idle)-1]
		c.idle = c.idle[:len(c.idle)-1]
		if !conn.IsClosing() {
			c.mu.Unlock()
			return conn, true, nil
		}
		dead = append(dead, conn)
	}
	c.mu.Unlock()
	conn, err := c.dial(ctx)
	return conn, false, err
}

// put keeps conn for a later call, or closes it if enough are kept.
func (c *Connector) put(conn *goldap.Conn) {
	c.mu.Lock()
	if !c.closed && len(c.idle) < maxIdle {
		c.idle = append(c.idle, conn)
		conn = nil
	}
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
}

// Close closes the connections kept between calls. The connector still
// works afterwards, but keeps no connection open: each call dials its own.
func (c *Connector) Close() error {
	c.mu.Lock()
	idle := c.idle
	c.idle, c.closed = nil, true
	c.mu.Unlock()
	for _, conn := range idle {
		conn.Close()
	}
	return nil
}

// dial connects to the server, secures the connection as configured and
// binds. ctx ending closes the connection and makes dial return.
func (c *Connector) dial(ctx context.Context) (*goldap.Conn, error) {
	var d net.Dialer
	raw, err := d.DialContext(ctx, "tcp", c.addr)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", c.addr, err)
	}
	if c.ldaps {
		tc := tls.Client(raw, c.tls.Clone())
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("tls with %s: %w", c.addr, err)
		}
		raw = tc
	}
	conn := goldap.NewConn(raw, c.ldaps)
	conn.Start()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	err = c.secure(conn)
	if !stop() {
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return nil, ctx.Err()
	}
	if err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// secure runs StartTLS, if configured, and binds.
func (c *Connector) secure(conn *goldap.Conn) error {
	if c.startTLS {
		if err := conn.StartTLS(c.tls.Clone()); err != nil {
			return fmt.Errorf("starttls with %s: %w", c.addr, err)
		}
	}
	if c.bindDN == "" {
		return nil
	}
	// go-ldap's errors for a bind hold the server's diagnostic message,
	// never the password.
	if err := conn.Bind(c.bindDN, c.bindPassword); err != nil {
		return fmt.Errorf("bind as %s: %w", c.bindDN, err)
	}
	return nil
}
