package postgres

import (
	"context"
	"errors"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// errClosed is the cause of a call made after Close.
var errClosed = errors.New("connector is closed")

// pool keeps a few connections to the server for the connector's calls:
// at most size in use at once, and at most idle kept between calls.
// Every connection taken from it is checked with a ping first, so that a
// call does not fail on one that died while idle. It starts no goroutine.
type pool struct {
	config *pgx.ConnConfig
	slots  chan struct{} // one token per connection in use
	idle   chan *pgx.Conn

	mu     sync.Mutex
	closed bool
}

func newPool(config *pgx.ConnConfig, size, idle int) *pool {
	return &pool{
		config: config,
		slots:  make(chan struct{}, size),
		idle:   make(chan *pgx.Conn, idle),
	}
}

// acquire returns a live connection, to be handed back with release.
func (p *pool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case p.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if p.isClosed() {
		<-p.slots
		return nil, errClosed
	}
	for {
		var conn *pgx.Conn
		select {
		case conn = <-p.idle:
		default:
		}
		if conn == nil {
			break
		}
		if err := conn.Ping(ctx); err == nil {
			return conn, nil
		}
		conn.Close(context.Background())
		if ctx.Err() != nil {
			<-p.slots
			return nil, ctx.Err()
		}
	}
	conn, err := pgx.ConnectConfig(ctx, p.config)
	if err != nil {
		<-p.slots
		return nil, err
	}
	return conn, nil
}

// release hands conn back: it is kept for the next call if it is healthy
// and not inside a transaction, and closed otherwise.
func (p *pool) release(conn *pgx.Conn) {
	defer func() { <-p.slots }()
	if conn.IsClosed() || conn.PgConn().TxStatus() != 'I' {
		conn.Close(context.Background())
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		conn.Close(context.Background())
		return
	}
	select {
	case p.idle <- conn:
	default:
		conn.Close(context.Background())
	}
}

func (p *pool) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// close closes the idle connections; those in use are closed as they are
// released.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	for {
		select {
		case conn := <-p.idle:
			conn.Close(context.Background())
		default:
			return
		}
	}
}

// Exec, Query, QueryRow and Begin run on a connection of their own;
// together they make the pool a querier and a pgx.BeginFunc target. A
// Query's connection goes back when its rows are closed.

func (p *pool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer p.release(conn)
	return conn.Exec(ctx, sql, args...)
}

func (p *pool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		p.release(conn)
		return nil, err
	}
	return &poolRows{Rows: rows, release: func() { p.release(conn) }}, nil
}

func (p *pool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := p.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return rowOf{rows}
}

func (p *pool) Begin(ctx context.Context) (pgx.Tx, error) {
	conn, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		p.release(conn)
		return nil, err
	}
	return &poolTx{Tx: tx, release: func() { p.release(conn) }}, nil
}

// poolRows hands its connection back when closed.
type poolRows struct {
	pgx.Rows
	release func()
	once    sync.Once
}

func (r *poolRows) Close() {
	r.Rows.Close()
	r.once.Do(r.release)
}

func (r *poolRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

// rowOf is the first row of rows.
type rowOf struct{ rows pgx.Rows }

func (r rowOf) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// poolTx hands its connection back when it commits or rolls back.
type poolTx struct {
	pgx.Tx
	release func()
	once    sync.Once
}

func (t *poolTx) Commit(ctx context.Context) error {
	defer t.once.Do(t.release)
	return t.Tx.Commit(ctx)
}

func (t *poolTx) Rollback(ctx context.Context) error {
	defer t.once.Do(t.release)
	return t.Tx.Rollback(ctx)
}
