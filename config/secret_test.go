package config

import (
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

func TestSlackTokens(t *testing.T) {
	const (
		bot = "xoxb-1111-2222-secretbot"
		app = "xapp-1-A111-secretapp"
	)
	tests := []struct {
		name    string
		env     map[string]string
		files   map[string]string // slack key → file content
		wantBot string
		wantApp string
		wantErr error
	}{
		{name: "from environment", env: map[string]string{envBotToken: bot, envAppToken: app}, wantBot: bot, wantApp: app},
		{name: "from files", files: map[string]string{"bot": bot + "\n", "app": app + "\n"}, wantBot: bot, wantApp: app},
		{name: "missing", wantErr: ErrSecretMissing},
		{name: "both ways", env: map[string]string{envBotToken: bot, envAppToken: app}, files: map[string]string{"bot": bot, "app": app}, wantErr: ErrSecretConflict},
		{name: "swapped", env: map[string]string{envBotToken: app, envAppToken: bot}, wantErr: ErrSecretMalformed},
		{name: "user token", env: map[string]string{envBotToken: "xoxp-secretuser", envAppToken: "xoxp-secretuser"}, wantErr: ErrSecretMalformed},
		{name: "empty file", files: map[string]string{"bot": "\n", "app": " "}, wantErr: ErrSecretMissing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var s Slack
			if c, ok := tt.files["bot"]; ok {
				s.BotTokenFile = writeFile(t, "bot", c)
			}
			if c, ok := tt.files["app"]; ok {
				s.AppTokenFile = writeFile(t, "app", c)
			}
			gotBot, errBot := s.BotToken()
			gotApp, errApp := s.AppToken()
			if tt.wantErr != nil {
				for _, err := range []error{errBot, errApp} {
					if !errors.Is(err, tt.wantErr) {
						t.Errorf("error = %v, want %v", err, tt.wantErr)
					}
					for _, leak := range []string{"secretbot", "secretapp", "secretuser"} {
						if err != nil && strings.Contains(err.Error(), leak) {
							t.Errorf("error %q shows the token", err)
						}
					}
				}
				return
			}
			if errBot != nil || errApp != nil {
				t.Fatalf("BotToken: %v; AppToken: %v", errBot, errApp)
			}
			if gotBot != tt.wantBot || gotApp != tt.wantApp {
				t.Errorf("tokens = %q, %q; want %q, %q", gotBot, gotApp, tt.wantBot, tt.wantApp)
			}
		})
	}
}

func TestSlackTokenErrorsNameTheSource(t *testing.T) {
	isolateEnv(t)
	_, err := Slack{}.BotToken()
	if err == nil || !strings.Contains(err.Error(), envBotToken) || !strings.Contains(err.Error(), "slack.bot_token_file") {
		t.Errorf("BotToken error = %v, want it to name %s and slack.bot_token_file", err, envBotToken)
	}
	_, err = Slack{AppTokenFile: filepath.Join(t.TempDir(), "missing")}.AppToken()
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "slack.app_token_file") {
		t.Errorf("AppToken error = %v, want fs.ErrNotExist naming slack.app_token_file", err)
	}
}

func TestAdminToken(t *testing.T) {
	isolateEnv(t)
	if _, err := (Admin{}).Token(); !errors.Is(err, ErrSecretMissing) {
		t.Errorf("Token() error = %v, want ErrSecretMissing", err)
	}
	t.Setenv(envAdminToken, "short")
	if _, err := (Admin{}).Token(); !errors.Is(err, ErrSecretMalformed) {
		t.Errorf("Token() of a short token: error = %v, want ErrSecretMalformed", err)
	}
	long := strings.Repeat("k", minAdminToken)
	t.Setenv(envAdminToken, "")
	got, err := Admin{TokenFile: writeFile(t, "token", long+"\n")}.Token()
	if err != nil || got != long {
		t.Errorf("Token() = %q, %v; want the file's token", got, err)
	}
}

func TestSecretRef(t *testing.T) {
	isolateEnv(t)
	t.Setenv("TEST_PG_PASSWORD", "pw-from-env")
	tests := []struct {
		name    string
		ref     SecretRef
		want    string
		wantErr error
	}{
		{"env", SecretRef{Env: "TEST_PG_PASSWORD"}, "pw-from-env", nil},
		{"file", SecretRef{File: writeFile(t, "pw", "pw-from-file\n")}, "pw-from-file", nil},
		{"empty env", SecretRef{Env: "TEST_PG_UNSET"}, "", ErrSecretMissing},
		{"unset", SecretRef{}, "", ErrSecretMissing},
	}
	for _, tt := range tests {
		got, err := tt.ref.Read()
		if !errors.Is(err, tt.wantErr) || got != tt.want {
			t.Errorf("%s: Read() = %q, %v; want %q, %v", tt.name, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestConnectorSecretRefs(t *testing.T) {
	isolateEnv(t)
	cfg := mustLoad(t, patched(t, `connectors: [{}, {}, {name: hook, type: webhook, settings: {url: "https://hooks.example.com/x", secret_file: /run/hook}}]`))
	c, _ := cfg.Connector("hook")
	ref := c.Settings.(*WebhookSettings).Secret
	if ref.File != "/run/hook" || ref.Env != "" {
		t.Errorf("Secret() = %+v, want the file", ref)
	}
	_, err := ref.Read()
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "connectors[2].settings.secret_file") {
		t.Errorf("Read() error = %v, want fs.ErrNotExist naming connectors[2].settings.secret_file", err)
	}
}

func TestLooksSecret(t *testing.T) {
	tests := map[string]bool{
		"password": true, "DB_PASSWORD": true, "DB_PASS": true, "api_key": true, "FLAGS_API_KEY": true,
		"--api-key": true, "clientSecret": true, "AUTH": true, "private_key": true, "GITHUB_TOKEN": true,
		"password_file": false, "DB_PASSWORD_ENV": false, "--password-file": false, "SSH_KEY_PATH": false,
		"PASSENGER": false, "MONKEY": false, "AUTHOR": false, "environment": false, "": false,
	}
	for name, want := range tests {
		if got := looksSecret(name); got != want {
			t.Errorf("looksSecret(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestRedactURL(t *testing.T) {
	tests := map[string]string{
		"https://u:p@example.com/x?y=a@b": "https://…@example.com/x?y=a@b",
		"postgres://u:p@h/db":             "postgres://…@h/db",
		"u:p@host":                        "…@host",
		"https://example.com/a@b":         "https://example.com/a@b",
		"not a url":                       "not a url",
	}
	for in, want := range tests {
		if got := redactURL(in); got != want {
			t.Errorf("redactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
