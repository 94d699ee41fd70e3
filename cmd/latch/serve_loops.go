package main

import (
	"context"
	"errors"
	"net/http"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/reconcile"
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
func (s *service) startLoops(ctx context.Context) {
	s.startReconciler(ctx)
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
