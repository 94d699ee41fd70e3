package config

import "time"

// The structs in this file mirror the YAML file key for key; their
// mapstructure tags are the keys. Load decodes into them, checks the result
// and converts it into the workflow types. The README's configuration
// reference is tested against them.

// document is the whole configuration file.
type document struct {
	Slack      Slack                `mapstructure:"slack"`
	Store      Store                `mapstructure:"store"`
	Log        Log                  `mapstructure:"log"`
	Admin      Admin                `mapstructure:"admin"`
	Channels   Channels             `mapstructure:"channels"`
	Directory  directoryDoc         `mapstructure:"directory"`
	Connectors []connectorDoc       `mapstructure:"connectors"`
	Catalogue  catalogueDoc         `mapstructure:"catalogue"`
	Policies   map[string]policyDoc `mapstructure:"policies"`
}

// Slack says how to reach Slack. The tokens themselves are never in the
// file: see AppToken and BotToken.
type Slack struct {
	AppTokenFile string `mapstructure:"app_token_file"` // file holding the xapp- token
	BotTokenFile string `mapstructure:"bot_token_file"` // file holding the xoxb- token
	APIURL       string `mapstructure:"api_url"`        // Web API base URL, ending in "/"
}

// Store says where the event log lives.
type Store struct {
	Path string `mapstructure:"path"` // the bbolt file
}

// Log configures logging.
type Log struct {
	Level string `mapstructure:"level"` // a zerolog level name
}

// Admin configures the admin HTTP API and who administers latch.
type Admin struct {
	Listen    string   `mapstructure:"listen"`     // host:port of the admin API
	TokenFile string   `mapstructure:"token_file"` // file holding the API token
	Admins    []string `mapstructure:"admins"`     // Slack ids, once loaded
}

// Channels names the Slack channels latch posts to, by channel id.
type Channels struct {
	Security   string   `mapstructure:"security"`   // announcements for the security team
	BreakGlass []string `mapstructure:"breakglass"` // where break-glass may be used
}

type directoryDoc struct {
	Users  []userDoc  `mapstructure:"users"`
	Groups []groupDoc `mapstructure:"groups"`
}

type userDoc struct {
	SlackID string   `mapstructure:"slack_id"`
	Email   string   `mapstructure:"email"`
	Manager string   `mapstructure:"manager"`
	Groups  []string `mapstructure:"groups"`
}

type groupDoc struct {
	Name        string   `mapstructure:"name"`
	Description string   `mapstructure:"description"`
	Members     []string `mapstructure:"members"`
	Source      string   `mapstructure:"source"`
	Ref         string   `mapstructure:"ref"`
	Connector   string   `mapstructure:"connector"`
}

type connectorDoc struct {
	Name string `mapstructure:"name"`
	Type string `mapstructure:"type"`
	// Settings are decoded by type into one of the *Settings structs.
	Settings map[string]any `mapstructure:"settings"`
}

type catalogueDoc struct {
	Items []itemDoc `mapstructure:"items"`
}

type itemDoc struct {
	ID          string            `mapstructure:"id"`
	Name        string            `mapstructure:"name"`
	Description string            `mapstructure:"description"`
	Labels      map[string]string `mapstructure:"labels"`
	Owners      []string          `mapstructure:"owners"`
	Kind        string            `mapstructure:"kind"`
	Targets     []targetDoc       `mapstructure:"targets"`
	Policy      string            `mapstructure:"policy"`
}

type targetDoc struct {
	Connector   string `mapstructure:"connector"`
	Entitlement string `mapstructure:"entitlement"`
}

type policyDoc struct {
	Description       string           `mapstructure:"description"`
	VisibleTo         []string         `mapstructure:"visible_to"`
	Visible           string           `mapstructure:"visible"`
	Duration          durationDoc      `mapstructure:"duration"`
	Extension         extensionDoc     `mapstructure:"extension"`
	Approval          approvalDoc      `mapstructure:"approval"`
	AutoApprove       string           `mapstructure:"auto_approve"`
	AutoReject        string           `mapstructure:"auto_reject"`
	AllowSelfApproval bool             `mapstructure:"allow_self_approval"`
	OnBehalf          onBehalfDoc      `mapstructure:"on_behalf"`
	Justification     justificationDoc `mapstructure:"justification"`
	Reminders         remindersDoc     `mapstructure:"reminders"`
	WarnBefore        *time.Duration   `mapstructure:"warn_before"`
	BreakGlass        breakGlassDoc    `mapstructure:"breakglass"`
}

type durationDoc struct {
	Default time.Duration   `mapstructure:"default"`
	Min     time.Duration   `mapstructure:"min"`
	Max     time.Duration   `mapstructure:"max"`
	Choices []time.Duration `mapstructure:"choices"`
}

type extensionDoc struct {
	MaxTotal         time.Duration `mapstructure:"max_total"`
	RequiresApproval *bool         `mapstructure:"requires_approval"`
}

type approvalDoc struct {
	Mode   string     `mapstructure:"mode"`
	Stages []stageDoc `mapstructure:"stages"`
}

type stageDoc struct {
	Name      string   `mapstructure:"name"`
	Approvers []string `mapstructure:"approvers"`
	Required  *int     `mapstructure:"required"`
}

type onBehalfDoc struct {
	Allowed bool     `mapstructure:"allowed"`
	Anyone  bool     `mapstructure:"anyone"`
	Manager bool     `mapstructure:"manager"`
	Groups  []string `mapstructure:"groups"`
}

type justificationDoc struct {
	MinLength int `mapstructure:"min_length"`
}

type remindersDoc struct {
	RemindAfter       time.Duration `mapstructure:"remind_after"`
	EscalateAfter     time.Duration `mapstructure:"escalate_after"`
	PendingTimeout    time.Duration `mapstructure:"pending_timeout"`
	FallbackApprovers []string      `mapstructure:"fallback_approvers"`
}

type breakGlassDoc struct {
	Enabled        bool          `mapstructure:"enabled"`
	Groups         []string      `mapstructure:"groups"`
	Channels       []string      `mapstructure:"channels"`
	MaxDuration    time.Duration `mapstructure:"max_duration"`
	RateLimit      rateLimitDoc  `mapstructure:"rate_limit"`
	ReviewWithin   time.Duration `mapstructure:"review_within"`
	ReviewReminder time.Duration `mapstructure:"review_reminder"`
	Reviewers      []string      `mapstructure:"reviewers"`
}

type rateLimitDoc struct {
	Count int           `mapstructure:"count"`
	Per   time.Duration `mapstructure:"per"`
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
	defaultPGConnTimeout  = 10 * time.Second
	defaultPGPort         = 5432
	defaultPGSSLMode      = "verify-full"
	defaultNameTemplate   = "{{.LocalPart}}"
	defaultLDAPUserFilter = "(mail={{.Email}})"
	defaultGroupAttribute = "member"
)
