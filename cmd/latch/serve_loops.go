package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/audit"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/reconcile"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

// mountAdmin adds the admin API to mux. Without a token it refuses every
// call; the configuration check already requires one off loopback.
func (s *service) mountAdmin(mux *http.ServeMux) error {
	token, err := s.cfg.Admin.Token()
	if err != nil && !errors.Is(err, config.ErrSecretMissing) {
		return err
	}
	if token == "" {
		s.log.Warn().Msg("no admin token is set (admin.token_file or LATCH_ADMIN_TOKEN): the admin API refuses every call")
	}
	admin.New(admin.Config{Store: s.store, Engine: s.engine, Token: []byte(token), Clock: s.clock, Log: s.log}).Routes(mux)
	return nil
}

// startLoops starts the audit sinks, the checkpointer and the drift
// reconciler, as configured.
func (s *service) startLoops(ctx context.Context) error {
	if err := s.startSinks(ctx); err != nil {
		return err
	}
	if err := s.startCheckpoints(ctx); err != nil {
		return err
	}
	s.startReconciler(ctx)
	return nil
}

// sinkLagEvery is how often the sinks' lag is measured for /metrics, and
// sinkDrain how long the sinks get at shutdown to deliver the last events.
const (
	sinkLagEvery = 15 * time.Second
	sinkDrain    = 5 * time.Second
)

// startSinks streams the audit log to each configured sink, from where it
// stopped, and measures how far behind each is.
func (s *service) startSinks(ctx context.Context) error {
	var streams []*audit.Stream
	for _, sc := range s.cfg.Audit.Sinks {
		var sink audit.Sink
		switch sc.Type {
		case "file":
			fs, err := audit.NewFileSink(audit.FileConfig{Name: sc.Name, Path: sc.Path, Format: audit.Format(sc.Format), Requests: s.store})
			if err != nil {
				return fmt.Errorf("audit sink %s: %w", sc.Name, err)
			}
			s.closers = append(s.closers, fs.Close)
			sink = fs
		case "http":
			secret, err := sc.Secret.Read()
			if err != nil {
				return fmt.Errorf("audit sink %s: %w", sc.Name, err)
			}
			if sink, err = audit.NewHTTPSink(audit.HTTPConfig{Name: sc.Name, URL: sc.URL, Secret: []byte(secret),
				Format: audit.Format(sc.Format), Requests: s.store, Timeout: sc.Timeout}); err != nil {
				return fmt.Errorf("audit sink %s: %w", sc.Name, err)
			}
		default:
			return fmt.Errorf("audit sink %s: unknown type %q", sc.Name, sc.Type)
		}
		st := audit.NewStream(s.store, sink, audit.Options{Log: s.log.With().Str("sink", sc.Name).Logger()})
		streams = append(streams, st)
	}
	if len(streams) == 0 {
		return nil
	}
	// The streams outlive ctx by a drain: at shutdown, once the engine has
	// committed its last events, they get sinkDrain to deliver them.
	streamCtx, stopStreams := context.WithCancel(context.WithoutCancel(ctx))
	for _, st := range streams {
		s.background(func() {
			if err := st.Run(streamCtx); err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, store.ErrClosed) {
				s.log.Error().Err(err).Str("sink", st.Sink().Name()).Msg("audit sink stopped")
			}
		})
	}
	s.background(func() {
		<-ctx.Done()
		defer stopStreams()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		deadline := time.Now().Add(sinkDrain)
		for {
			behind := 0
			for _, st := range streams {
				if st.Lag() > 0 {
					behind++
				}
			}
			switch {
			case behind == 0:
				return
			case time.Now().After(deadline):
				s.log.Warn().Int("sinks", behind).Msg("audit sinks not caught up at shutdown; they resume from where they are at the next start")
				return
			}
			<-t.C
		}
	})
	s.background(func() {
		t := s.clock.NewTicker(sinkLagEvery)
		defer t.Stop()
		for {
			for _, st := range streams {
				s.metrics.SetAuditSinkLag(st.Sink().Name(), st.Lag())
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C():
			}
		}
	})
	return nil
}

// startCheckpoints signs a checkpoint every audit.checkpoints.every and at
// shutdown, appends it to audit.checkpoints.file and posts it to the
// security channel.
func (s *service) startCheckpoints(ctx context.Context) error {
	c := s.cfg.Audit.Checkpoints
	if c.SigningKeyFile == "" {
		return nil
	}
	priv, err := audit.ReadPrivateKey(c.SigningKeyFile)
	if err != nil {
		return fmt.Errorf("audit.checkpoints.signing_key_file: %w", err)
	}
	publish := func(ctx context.Context, cp audit.Checkpoint) error {
		var err error
		if c.File != "" {
			err = audit.AppendCheckpoint(c.File, cp)
		}
		text := fmt.Sprintf("events: %d\nhead: %s\ntime: %s\nkey: %s\nsignature: %s",
			cp.Events, cp.Head, cp.Time.UTC().Format(time.RFC3339Nano), cp.Key, cp.Signature)
		err = errors.Join(err, s.bot.Announce(ctx, "Audit log checkpoint", text))
		if err != nil {
			s.log.Warn().Err(err).Msg("audit checkpoint not published everywhere")
		}
		return err
	}
	s.background(func() {
		if err := audit.RunCheckpoints(ctx, s.store, priv, c.Every, s.clock, publish); err != nil && !errors.Is(err, context.Canceled) {
			s.log.Error().Err(err).Msg("checkpoints stopped")
		}
	})
	return nil
}

// startReconciler compares, every reconcile.every, what the connectors
// that can list their access hold with the grants.
func (s *service) startReconciler(ctx context.Context) {
	every := s.cfg.Reconcile.Every
	if every <= 0 {
		return
	}
	remove := map[string]bool{}
	for _, name := range s.cfg.Reconcile.RemoveUnmanaged {
		remove[name] = true
	}
	log := s.log.With().Str("component", "reconcile").Logger()
	rec, err := reconcile.New(reconcile.Config{
		Store: s.store, Catalogue: s.cfg.Catalogue, Connectors: s.connectors,
		Record: func(ctx context.Context, events []workflow.Event) error {
			_, err := s.store.Append(ctx, events...)
			return err
		},
		Report: func(ctx context.Context, f reconcile.Finding) {
			if err := s.bot.Announce(ctx, f.Title(), f.Text()); err != nil {
				log.Warn().Err(err).Msg("drift finding not announced")
			}
		},
		Clock: s.clock, Every: every, RemoveUnmanaged: remove, Log: log,
	})
	if err != nil {
		log.Error().Err(err).Msg("drift reconciler not started")
		return
	}
	s.background(func() {
		if err := rec.Run(ctx); err != nil {
			log.Error().Err(err).Msg("drift reconciler stopped")
		}
	})
}
