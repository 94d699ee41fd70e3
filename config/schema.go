package config

import "time"

// The structs in this file mirror the YAML file key for key; their
// yaml tags are the keys. Load decodes into them, checks the result
// and converts it into the workflow types. The README's configuration
// reference is tested against them.

// document is the whole configuration file.
type document struct {
	Slack      Slack                `yaml:"slack"`
	Store      Store                `yaml:"store"`
	Log        Log                  `yaml:"log"`
	Admin      Admin                `yaml:"admin"`
	Channels   Channels             `yaml:"channels"`
	Directory  directoryDoc         `yaml:"directory"`
	Connectors []connectorDoc       `yaml:"connectors"`
	Catalogue  catalogueDoc         `yaml:"catalogue"`
	Policies   map[string]policyDoc `yaml:"policies"`
	Audit      Audit                `yaml:"audit"`
	Reconcile  Reconcile            `yaml:"reconcile"`
}

// Audit says where the audit log is streamed and how it is checkpointed.
type Audit struct {
	Sinks       []Sink      `yaml:"sinks"`
	Checkpoints Checkpoints `yaml:"checkpoints"`
}

// Sink is a destination every committed event is delivered to, at least
// once and in order.
type Sink struct {
	Name       string        `yaml:"name"`
	Type       string        `yaml:"type"`        // "file" or "http"
	Path       string        `yaml:"path"`        // file: the JSON lines file
	URL        string        `yaml:"url"`         // http: the endpoint
	SecretEnv  string        `yaml:"secret_env"`  // http: the HMAC signing secret
	SecretFile string        `yaml:"secret_file"` //
	Format     string        `yaml:"format"`      // "latch" or "ocsf"
	Timeout    time.Duration `yaml:"timeout"`     // http: one delivery

	Secret SecretRef `yaml:"-"`
}

// Checkpoints configure signed statements of the log's length and head.
type Checkpoints struct {
	SigningKeyFile string        `yaml:"signing_key_file"` // ed25519 private key (PEM); none turns checkpoints off
	Every          time.Duration `yaml:"every"`
	File           string        `yaml:"file"` // where checkpoints are appended, one JSON line each
}

// Reconcile configures the drift reconciler.
type Reconcile struct {
	// Every is how often connectors that can list what they manage are
	// compared with the grants; zero turns the reconciler off.
	Every time.Duration `yaml:"every"`
	// RemoveUnmanaged names the connectors whose unmanaged access (in an
	// entitlement latch manages, never granted by latch) is removed, not
	// only reported.
	RemoveUnmanaged []string `yaml:"remove_unmanaged"`
}

// Slack says how to reach Slack. The tokens themselves are never in the
// file: see AppToken and BotToken.
type Slack struct {
	AppTokenFile string `yaml:"app_token_file"` // file holding the xapp- token
	BotTokenFile string `yaml:"bot_token_file"` // file holding the xoxb- token
	APIURL       string `yaml:"api_url"`        // Web API base URL, ending in "/"
}

// Store says where the event log lives.
type Store struct {
	Path string `yaml:"path"` // the bbolt file
}

// Log configures logging.
type Log struct {
	Level string `yaml:"level"` // a zerolog level name
}

// Admin configures the admin HTTP API and who administers latch.
type Admin struct {
	Listen    string   `yaml:"listen"`     // host:port of the admin API
	TokenFile string   `yaml:"token_file"` // file holding the API token
	Admins    []string `yaml:"admins"`     // Slack ids, once loaded
}

// Channels names the Slack channels latch posts to, by channel id.
type Channels struct {
	Security   string   `yaml:"security"`   // announcements for the security team
	BreakGlass []string `yaml:"breakglass"` // where break-glass may be used
}

type directoryDoc struct {
	Users  []userDoc  `yaml:"users"`
	Groups []groupDoc `yaml:"groups"`
}

type userDoc struct {
	SlackID string   `yaml:"slack_id"`
	Email   string   `yaml:"email"`
	Manager string   `yaml:"manager"`
	Groups  []string `yaml:"groups"`
}

type groupDoc struct {
	Name        string   `yaml:"name"`
	Description string   `yaml:"description"`
	Members     []string `yaml:"members"`
	Source      string   `yaml:"source"`
	Ref         string   `yaml:"ref"`
	Connector   string   `yaml:"connector"`
}

type connectorDoc struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`
	// Settings are decoded by type into one of the *Settings structs.
	Settings map[string]any `yaml:"settings"`
}

type catalogueDoc struct {
	Items []itemDoc `yaml:"items"`
}

type itemDoc struct {
	ID          string            `yaml:"id"`
	Name        string            `yaml:"name"`
	Description string            `yaml:"description"`
	Labels      map[string]string `yaml:"labels"`
	Owners      []string          `yaml:"owners"`
	Kind        string            `yaml:"kind"`
	Targets     []targetDoc       `yaml:"targets"`
	Policy      string            `yaml:"policy"`
}

type targetDoc struct {
	Connector   string `yaml:"connector"`
	Entitlement string `yaml:"entitlement"`
}

type policyDoc struct {
	Description       string           `yaml:"description"`
	VisibleTo         []string         `yaml:"visible_to"`
	Visible           string           `yaml:"visible"`
	Duration          durationDoc      `yaml:"duration"`
	Extension         extensionDoc     `yaml:"extension"`
	Approval          approvalDoc      `yaml:"approval"`
	AutoApprove       string           `yaml:"auto_approve"`
	AutoReject        string           `yaml:"auto_reject"`
	AllowSelfApproval bool             `yaml:"allow_self_approval"`
	OnBehalf          onBehalfDoc      `yaml:"on_behalf"`
	Justification     justificationDoc `yaml:"justification"`
	Reminders         remindersDoc     `yaml:"reminders"`
	WarnBefore        *time.Duration   `yaml:"warn_before"`
	BreakGlass        breakGlassDoc    `yaml:"breakglass"`
}

type durationDoc struct {
	Default time.Duration   `yaml:"default"`
	Min     time.Duration   `yaml:"min"`
	Max     time.Duration   `yaml:"max"`
	Choices []time.Duration `yaml:"choices"`
}

type extensionDoc struct {
	MaxTotal         time.Duration `yaml:"max_total"`
	RequiresApproval *bool         `yaml:"requires_approval"`
}

type approvalDoc struct {
	Mode   string     `yaml:"mode"`
	Stages []stageDoc `yaml:"stages"`
}

type stageDoc struct {
	Name      string   `yaml:"name"`
	Approvers []string `yaml:"approvers"`
	Required  *int     `yaml:"required"`
}

type onBehalfDoc struct {
	Allowed bool     `yaml:"allowed"`
	Anyone  bool     `yaml:"anyone"`
	Manager bool     `yaml:"manager"`
	Groups  []string `yaml:"groups"`
}

type justificationDoc struct {
	MinLength int `yaml:"min_length"`
}

type remindersDoc struct {
	RemindAfter       time.Duration `yaml:"remind_after"`
	EscalateAfter     time.Duration `yaml:"escalate_after"`
	PendingTimeout    time.Duration `yaml:"pending_timeout"`
	FallbackApprovers []string      `yaml:"fallback_approvers"`
}

type breakGlassDoc struct {
	Enabled        bool          `yaml:"enabled"`
	Groups         []string      `yaml:"groups"`
	Channels       []string      `yaml:"channels"`
	MaxDuration    time.Duration `yaml:"max_duration"`
	RateLimit      rateLimitDoc  `yaml:"rate_limit"`
	ReviewWithin   time.Duration `yaml:"review_within"`
	ReviewReminder time.Duration `yaml:"review_reminder"`
	Reviewers      []string      `yaml:"reviewers"`
}

type rateLimitDoc struct {
	Count int           `yaml:"count"`
	Per   time.Duration `yaml:"per"`
}

// Defaults for keys the file leaves out.
const (
	DefaultSlackAPIURL    = "https://slack.com/api/"
	DefaultStorePath      = "latch.db"
	DefaultLogLevel       = "info"
	DefaultAdminListen    = "127.0.0.1:8089"
	defaultDuration       = time.Hour
	defaultDurationMin    = 15 * time.Minute
	defaultPendingTimeout = 24 * time.Hour
	defaultWarnBefore     = 10 * time.Minute
	defaultBGMaxDuration  = time.Hour
	defaultBGRateCount    = 1
	defaultBGRatePer      = 24 * time.Hour
	defaultReviewWithin   = 24 * time.Hour
	defaultReviewReminder = 4 * time.Hour
	defaultExecTimeout    = 30 * time.Second
	defaultWebhookTimeout = 10 * time.Second
	defaultLDAPTimeout    = 5 * time.Second
	defaultSinkTimeout    = 10 * time.Second
	defaultCheckpointFreq = 15 * time.Minute
	defaultPGTimeout      = 30 * time.Second
	defaultLDAPCacheTTL   = time.Minute
	defaultPGConnTimeout  = 5 * time.Second
	defaultPGPort         = 5432
	defaultPGSSLMode      = "verify-full"
	defaultNameTemplate   = "{{.LocalPart}}"
	defaultLDAPUserFilter = "(mail={{.Email}})"
	defaultGroupAttribute = "member"
)
