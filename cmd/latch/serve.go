package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/rs/zerolog"
	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"github.com/spf13/cobra"

	"github.com/latchhq/latch/admin"
	"github.com/latchhq/latch/bot"
	"github.com/latchhq/latch/config"
	"github.com/latchhq/latch/connectors/ldap"
	"github.com/latchhq/latch/metrics"
	"github.com/latchhq/latch/store"
	"github.com/latchhq/latch/workflow"
)

func newServeCmd() *cobra.Command {
	var cfgPath string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run latch: the Slack bot, the engine and its timers",
		Long: `Serve connects to Slack over Socket Mode and runs latch until it gets
SIGTERM or SIGINT, then shuts down cleanly.

The Slack tokens come from the environment: SLACK_BOT_TOKEN (the Bot User
OAuth Token, xoxb-…) and SLACK_APP_TOKEN (an app-level token with the
connections:write scope, xapp-…), or from the files named by
slack.bot_token_file and slack.app_token_file. Both are checked with Slack
before anything else starts.`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(cmd, cfgPath)
			if err != nil {
				return err
			}
			botToken, appToken, err := slackTokens(cfg)
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "latch: %v\n", err)
				return &exitError{exitFailure}
			}
			log, err := newLogger(cmd.ErrOrStderr(), cfg.Log.Level)
			if err != nil {
				return err
			}
			svc, err := startService(cmd.Context(), cfg, serviceOptions{
				BotToken: botToken, AppToken: appToken, APIURL: cfg.Slack.APIURL, Log: log,
			})
			if err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "latch: %v\n", err)
				return &exitError{exitFailure}
			}
			log.Info().Str("store", cfg.Store.Path).Int("items", cfg.Catalogue.Len()).Msg("latch is running")
			err = svc.run(cmd.Context())
			svc.close()
			log.Info().Msg("latch stopped")
			return err
		},
	}
	configFlag(cmd, &cfgPath)
	return cmd
}

// newLogger returns a JSON logger at a level.
func newLogger(w io.Writer, level string) (zerolog.Logger, error) {
	lvl := zerolog.InfoLevel
	if level != "" {
		var err error
		if lvl, err = zerolog.ParseLevel(level); err != nil {
			return zerolog.Logger{}, fmt.Errorf("log.level: %w", err)
		}
	}
	return zerolog.New(w).Level(lvl).With().Timestamp().Logger(), nil
}

// slackTokens reads the two tokens from the environment or their files and
// checks their form.
func slackTokens(cfg *config.Config) (botToken, appToken string, err error) {
	read := func(env, file, key string) (string, error) {
		if v := strings.TrimSpace(os.Getenv(env)); v != "" {
			return v, nil
		}
		if file == "" {
			return "", nil
		}
		data, err := os.ReadFile(file)
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
		return strings.TrimSpace(string(data)), nil
	}
	if botToken, err = read("SLACK_BOT_TOKEN", cfg.Slack.BotTokenFile, "slack.bot_token_file"); err != nil {
		return "", "", err
	}
	if appToken, err = read("SLACK_APP_TOKEN", cfg.Slack.AppTokenFile, "slack.app_token_file"); err != nil {
		return "", "", err
	}
	switch {
	case botToken == "":
		return "", "", errors.New("no Slack bot token: set SLACK_BOT_TOKEN to the app's Bot User OAuth Token (xoxb-…, under OAuth & Permissions), or name a file holding it in slack.bot_token_file")
	case !strings.HasPrefix(botToken, "xoxb-"):
		return "", "", errors.New("the Slack bot token does not start with xoxb-: use the Bot User OAuth Token from OAuth & Permissions, not a user or app-level token")
	case appToken == "":
		return "", "", errors.New("no Slack app-level token: set SLACK_APP_TOKEN to an app-level token with the connections:write scope (xapp-…, under Basic Information → App-Level Tokens), or name a file holding it in slack.app_token_file")
	case !strings.HasPrefix(appToken, "xapp-"):
		return "", "", errors.New("the Slack app-level token does not start with xapp-: generate one with the connections:write scope under Basic Information → App-Level Tokens")
	}
	return botToken, appToken, nil
}

// slackTimeout bounds one Web API call.
const slackTimeout = 15 * time.Second

// serviceOptions are what startService needs beyond the configuration.
type serviceOptions struct {
	BotToken, AppToken string
	APIURL             string // the Web API base URL; Slack's when empty
	Clock              workflow.Clock
	Log                zerolog.Logger
	SocketOptions      []socketmode.Option
	// Connectors replace the configured ones by name (the demo's).
	Connectors map[string]workflow.Provisioner
}

// service is latch running: the store, the engine and the bot.
type service struct {
	cfg    *config.Config
	log    zerolog.Logger
	clock  workflow.Clock
	store  *store.Store
	engine *workflow.Engine
	bot    *bot.Bot
	api    *slack.Client

	registry   *prometheus.Registry
	metrics    *metrics.Metrics
	health     *metrics.Health
	connectors map[string]workflow.Provisioner // unwrapped
	// storeFailed receives the store's failure when it stops taking writes.
	storeFailed <-chan error

	http           *http.Server
	stopBackground context.CancelFunc
	wg             sync.WaitGroup
	closers        []func() error // closed after the background loops
}

// startService checks the Slack tokens, opens the store and starts the
// engine; run then runs the bot.
func startService(ctx context.Context, cfg *config.Config, o serviceOptions) (*service, error) {
	if o.Clock == nil {
		o.Clock = workflow.RealClock{}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := metrics.New(reg)
	// No Web API call may hang: one stuck connection would hold up every
	// notice queued behind it.
	opts := []slack.Option{slack.OptionAppLevelToken(o.AppToken),
		slack.OptionHTTPClient(&http.Client{Timeout: slackTimeout, Transport: m.RoundTripper(http.DefaultTransport)})}
	if o.APIURL != "" {
		opts = append(opts, slack.OptionAPIURL(o.APIURL))
	}
	api := slack.New(o.BotToken, opts...)
	if err := checkSlack(ctx, api); err != nil {
		return nil, err
	}

	connectors, err := buildConnectors(cfg)
	if err != nil {
		return nil, err
	}
	for name, p := range o.Connectors {
		connectors[name] = p
	}
	types := make(map[string]string, len(cfg.Connectors))
	for _, c := range cfg.Connectors {
		types[c.Name] = c.Type
	}

	// A store that stops taking writes (a full disk) is reported by
	// reportStoreFailure, not from the store's writer.
	storeFailed := make(chan error, 1)
	st, err := store.Open(cfg.Store.Path, store.Options{Now: o.Clock.Now, Projections: []store.Projection{store.Requests{}},
		OnFail: func(err error) {
			select {
			case storeFailed <- err:
			default:
			}
		}})
	if err != nil {
		return nil, fmt.Errorf("store %s: %w", cfg.Store.Path, err)
	}
	base, err := ldapDirectory(cfg, connectors, o.Clock)
	if err != nil {
		st.Close()
		return nil, err
	}
	// Timed and counted; wrapped after ldapDirectory, which needs the
	// LDAP connector itself. The reconciler gets them unwrapped, to reach
	// the ways of removing access some connectors have beyond revoking.
	raw := maps.Clone(connectors)
	for name, p := range connectors {
		connectors[name] = m.Provisioner(name, p)
	}
	dir := bot.NewDirectory(base, api, o.Clock, time.Minute)
	dir.OnGroupError(func(group string, err error) {
		o.Log.Warn().Err(err).Str("group", group).Msg("directory group not read from Slack; its members count as outside it for now")
	})
	b, err := bot.New(bot.Config{
		API: api, SocketOptions: o.SocketOptions, Requests: st, Catalogue: cfg.Catalogue, Policies: cfg.Policies,
		Directory: dir, ConnectorTypes: types, Admins: cfg.Admin.Admins, SecurityChannel: cfg.Channels.Security,
		Clock: o.Clock, Log: o.Log, OnAck: m.ObserveAck,
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	eng, err := workflow.NewEngine(workflow.Config{
		Store: st, Catalogue: cfg.Catalogue, Policies: cfg.Policies, Directory: dir, Connectors: connectors,
		// The admin API acts as admin.Actor; it authenticates by token.
		Notifier: b, Clock: o.Clock, Admins: append(slices.Clone(cfg.Admin.Admins), admin.Actor, admin.Actor+":"),
	})
	if err != nil {
		st.Close()
		return nil, err
	}
	b.SetEngine(eng)
	if err := eng.Start(); err != nil {
		st.Close()
		return nil, fmt.Errorf("start the engine: %w", err)
	}
	health := metrics.NewHealth()
	health.AddLive("store", metrics.StoreOpen(st))
	m.WatchStore(st)
	health.Add("slack", metrics.Up(b.Connected))
	health.Add("engine", metrics.Up(eng.Running))
	return &service{cfg: cfg, log: o.Log, clock: o.Clock, store: st, engine: eng, bot: b, api: api,
		registry: reg, metrics: m, health: health, connectors: raw, storeFailed: storeFailed}, nil
}

// groupCatalog is a directory with the configured groups' sources.
type groupCatalog struct {
	workflow.Directory
	groups *workflow.StaticDirectory
}

func (g groupCatalog) Group(name string) (workflow.Group, bool) { return g.groups.Group(name) }
func (g groupCatalog) GroupNames() []string                     { return g.groups.GroupNames() }

// ldapDirectory returns the configured directory, reading managers and
// groups from LDAP when a group's members come from an LDAP connector.
func ldapDirectory(cfg *config.Config, connectors map[string]workflow.Provisioner, clock workflow.Clock) (bot.GroupCatalog, error) {
	for _, name := range cfg.Directory.GroupNames() {
		g, _ := cfg.Directory.Group(name)
		if g.Source != workflow.GroupLDAP {
			continue
		}
		conn, ok := connectors[g.Connector].(*ldap.Connector)
		if !ok {
			return nil, fmt.Errorf("directory group %s: connector %s is not an LDAP connector", name, g.Connector)
		}
		settings, _ := cfg.Connector(g.Connector)
		ttl := time.Minute
		if s, ok := settings.Settings.(*config.LDAPSettings); ok {
			ttl = s.CacheTTL
		}
		dir, err := ldap.NewDirectory(conn, ldap.DirectoryConfig{Base: cfg.Directory, CacheTTL: ttl, Now: clock.Now})
		if err != nil {
			return nil, fmt.Errorf("directory from LDAP connector %s: %w", g.Connector, err)
		}
		return groupCatalog{Directory: dir, groups: cfg.Directory}, nil
	}
	return cfg.Directory, nil
}

// checkSlack asks Slack whether both tokens work, and says which to fix
// if one does not.
func checkSlack(ctx context.Context, api *slack.Client) error {
	if _, err := api.AuthTestContext(ctx); err != nil {
		return fmt.Errorf("Slack refused the bot token (%v): copy the Bot User OAuth Token (xoxb-…) again from OAuth & Permissions, and reinstall the app to the workspace if it was removed", err)
	}
	if _, _, err := api.StartSocketModeContext(ctx); err != nil {
		hint := "generate an app-level token with the connections:write scope under Basic Information → App-Level Tokens"
		if strings.Contains(err.Error(), "not_allowed_token_type") || strings.Contains(err.Error(), "missing_scope") {
			hint = "the app-level token needs the connections:write scope"
		}
		return fmt.Errorf("Slack refused the app-level token for Socket Mode (%v): %s, and turn Socket Mode on under Settings → Socket Mode", err, hint)
	}
	return nil
}

// run serves the admin API, health and metrics, starts the background
// loops and runs the bot until ctx ends. close then shuts everything down.
func (s *service) run(ctx context.Context) error {
	bg, stop := context.WithCancel(context.WithoutCancel(ctx))
	s.stopBackground = stop
	if err := s.serveHTTP(); err != nil {
		return err
	}
	s.background(func() {
		if err := s.metrics.Follow(bg, s.store); err != nil {
			s.log.Error().Err(err).Msg("metrics stopped following the audit log")
		}
	})
	s.background(func() { s.reportStoreFailure(bg) })
	if err := s.startLoops(bg); err != nil {
		return err
	}
	return s.bot.Run(ctx)
}

// reportStoreFailure tells the operators, in the log and the security
// channel, when the store stops taking writes.
func (s *service) reportStoreFailure(ctx context.Context) {
	var err error
	select {
	case <-ctx.Done():
		return
	case err = <-s.storeFailed:
	}
	s.log.Error().Err(err).Msg("the audit log cannot be written: latch refuses new requests and decisions until it is restarted on a writable store; access that expires is still taken back, and recorded after the restart")
	if s.cfg.Channels.Security == "" {
		return
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	text := err.Error() + "\nUntil latch is restarted on a writable store it refuses new requests and decisions (people are told why); access that expires is still taken back, and recorded after the restart. /healthz fails, so a liveness probe restarts it."
	if aerr := s.bot.Announce(actx, "latch cannot write its audit log", text); aerr != nil {
		s.log.Warn().Err(aerr).Msg("store failure not announced in the security channel")
	}
}

// background runs fn on a goroutine that close waits for.
func (s *service) background(fn func()) { s.wg.Go(fn) }

// serveHTTP listens on admin.listen for the admin API, /healthz, /readyz
// and /metrics.
func (s *service) serveHTTP() error {
	if s.cfg.Admin.Listen == "" {
		return nil
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", metrics.Handler(s.registry))
	mux.Handle("/healthz", s.health.Handler())
	mux.Handle("/readyz", s.health.Handler())
	if err := s.mountAdmin(mux); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.cfg.Admin.Listen)
	if err != nil {
		return fmt.Errorf("admin.listen: %w", err)
	}
	// Requests get contexts of their own, not ctx: at shutdown the server
	// stops first and lets the calls in flight finish (an export, a
	// revoke), within shutdownGrace.
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: time.Minute, IdleTimeout: 2 * time.Minute}
	s.background(func() {
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error().Err(err).Msg("admin server stopped")
		}
	})
	s.log.Info().Str("listen", ln.Addr().String()).Msg("admin API, health and metrics are served")
	return nil
}

// shutdownGrace bounds the shutdown of what serves requests.
const shutdownGrace = 10 * time.Second

// close stops the admin server and the engine, letting work in flight and
// queued notices finish (bounded), then the background loops (the sinks
// drain, a last checkpoint is signed), and closes the store. Timers stay durable:
// they are in the store.
func (s *service) close() {
	// No new work: the admin API first (calls in flight finish), then the
	// engine (commits, connector calls and notices in flight finish).
	if s.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		if err := s.http.Shutdown(ctx); err != nil {
			_ = s.http.Close()
		}
		cancel()
	}
	s.engine.Close()
	if s.stopBackground != nil {
		s.stopBackground()
	}
	s.wg.Wait()
	for _, c := range s.closers {
		if err := c(); err != nil {
			s.log.Warn().Err(err).Msg("close")
		}
	}
	s.store.Close()
}
