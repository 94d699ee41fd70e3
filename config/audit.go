package config

import (
	"path/filepath"
	"slices"
)

var sinkFormats = []string{"latch", "ocsf"}

func checkAudit(ps *problems, a *Audit) {
	seen := map[string]bool{}
	for i := range a.Sinks {
		s := &a.Sinks[i]
		path := index("audit.sinks", i)
		switch {
		case s.Name == "":
			ps.add(path+".name", "required; a short name for the sink, e.g. siem")
		case !slugPattern.MatchString(s.Name):
			ps.add(path+".name", "%q is not a name; %s", s.Name, slugAdvice)
		case seen[s.Name]:
			ps.add(path+".name", "%q names two sinks; each keeps its own delivery position, so names must differ", s.Name)
		}
		seen[s.Name] = true
		if s.Format == "" {
			s.Format = "latch"
		}
		if !slices.Contains(sinkFormats, s.Format) {
			ps.add(path+".format", "unknown format %q%s", s.Format, oneOf(s.Format, sinkFormats))
		}
		switch s.Type {
		case "file":
			if s.Path == "" {
				ps.add(path+".path", "required; the JSON lines file events are appended to")
			} else if !filepath.IsAbs(s.Path) {
				ps.add(path+".path", "%q is relative; use an absolute path", s.Path)
			}
		case "http":
			if u := checkURL(ps, path+".url", s.URL, "https", "http"); u != nil && u.Scheme == "http" && !isLoopback(u.Hostname()) {
				ps.add(path+".url", "http:// to %s sends the audit log in clear; use https://", u.Hostname())
			}
			s.Secret = secretRef(ps, path+".secret", s.SecretEnv, s.SecretFile, true)
			s.Timeout = positive(ps, path+".timeout", s.Timeout, defaultSinkTimeout)
		case "":
			ps.add(path+".type", "required; file or http")
		default:
			ps.add(path+".type", "unknown sink type %q%s", s.Type, oneOf(s.Type, []string{"file", "http"}))
		}
	}
	c := &a.Checkpoints
	if c.SigningKeyFile == "" {
		if c.File != "" || c.Every != 0 {
			ps.add("audit.checkpoints.signing_key_file", "required to sign checkpoints; generate one with: openssl genpkey -algorithm ed25519 -out checkpoint.pem")
		}
		return
	}
	c.Every = positive(ps, "audit.checkpoints.every", c.Every, defaultCheckpointFreq)
	for key, p := range map[string]string{"signing_key_file": c.SigningKeyFile, "file": c.File} {
		if p != "" && !filepath.IsAbs(p) {
			ps.add("audit.checkpoints."+key, "%q is relative; use an absolute path", p)
		}
	}
}

func checkReconcile(ps *problems, r *Reconcile, connectors []Connector) {
	if r.Every < 0 {
		ps.add("reconcile.every", "must not be negative; 0 turns the reconciler off")
	}
	for i, name := range r.RemoveUnmanaged {
		if !slices.ContainsFunc(connectors, func(c Connector) bool { return c.Name == name }) {
			ps.add(index("reconcile.remove_unmanaged", i), "no connector is named %q", name)
		}
	}
}
