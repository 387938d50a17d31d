package api

import (
	"fmt"
	"maps"
	"net/http"

	"github.com/tandemhq/tandem/internal/auth"
	"github.com/tandemhq/tandem/internal/job"
	"github.com/tandemhq/tandem/internal/store"
)

// SecretValueMax bounds a secret's value.
const SecretValueMax = 64 << 10

func (s *Server) registerSecrets(mux *http.ServeMux) {
	s.route(mux, "GET /api/v1/secrets", auth.Admin, s.handle(s.secretList))
	s.route(mux, "PUT /api/v1/secrets/{name}", auth.Admin, s.handle(s.secretSet))
	s.route(mux, "DELETE /api/v1/secrets/{name}", auth.Admin, s.handle(s.secretDelete))
}

func (s *Server) sealer() *auth.Sealer {
	if b, ok := s.b.(interface{ Sealer() *auth.Sealer }); ok {
		return b.Sealer()
	}
	return nil
}

func (s *Server) secretList(r *http.Request) (int, any, error) {
	list, err := s.store.SecretList(r.Context())
	if err != nil {
		return 0, nil, err
	}
	out := make([]Secret, 0, len(list))
	for _, x := range list {
		out = append(out, Secret{Name: x.Name, Version: x.Version, CreatedAt: x.CreatedAt, UpdatedAt: x.UpdatedAt})
	}
	return http.StatusOK, out, nil
}

// secretSet stores the request's body as the secret's new value, encrypted here.
func (s *Server) secretSet(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if !auth.SecretNamePattern.MatchString(name) {
		return 0, nil, &badRequest{"name", fmt.Sprintf("secret name %q: 1 to 100 letters, digits, '.', '_' or '-'", name)}
	}
	value, err := readBody(r, SecretValueMax)
	if err != nil {
		return 0, nil, err
	}
	if len(value) == 0 {
		return 0, nil, &badRequest{"body", "the secret's value (the request body) is empty"}
	}
	sl := s.sealer()
	if sl == nil {
		return 0, nil, &statusError{code: http.StatusServiceUnavailable, field: "secret_key_file", msg: auth.ErrNoSecretKey.Error() + ": set it on another node, or give this one the key"}
	}
	ct, err := sl.Seal(name, string(value))
	if err != nil {
		return 0, nil, err
	}
	v, err := s.store.SecretSet(r.Context(), store.SecretSetParams{Name: name, Ciphertext: ct, Audit: s.audit(r)})
	if err != nil {
		return 0, nil, err
	}
	s.log.Info("secret set", "secret", name, "version", v, "by", principalOf(r).Name, "client", r.RemoteAddr)
	return http.StatusOK, map[string]any{"name": name, "version": v}, nil
}

func (s *Server) secretDelete(r *http.Request) (int, any, error) {
	name := r.PathValue("name")
	if err := s.store.SecretDelete(r.Context(), store.SecretDeleteParams{Name: name, Audit: s.audit(r)}); err != nil {
		return 0, nil, err
	}
	s.log.Info("secret deleted", "secret", name, "by", principalOf(r).Name, "client", r.RemoteAddr)
	return http.StatusOK, map[string]string{"deleted": name}, nil
}

// Redacted is what the API shows of a value that may be secret.
const Redacted = "***"

// redactSpec hides what a job's fields may carry in clear: command.env and http.headers
// values (a {{secret "NAME"}} reference is shown, it is not the value), http.body unless
// it refers to secrets only, the password and query values of http.url and of webhook
// URLs, and webhook signing secrets.
func redactSpec(sp job.Spec) job.Spec {
	keep := func(v string) string {
		if v == "" || auth.HasSecretRef(v) {
			return v
		}
		return Redacted
	}
	if c := sp.Command; c != nil && len(c.Env) > 0 {
		cc := *c
		cc.Env = maps.Clone(c.Env)
		for k, v := range cc.Env {
			cc.Env[k] = keep(v)
		}
		sp.Command = &cc
	}
	if h := sp.HTTP; h != nil {
		hh := *h
		hh.URL = auth.RedactURL(h.URL)
		hh.Body = keep(h.Body)
		hh.Headers = maps.Clone(h.Headers)
		for k, v := range hh.Headers {
			hh.Headers[k] = keep(v)
		}
		sp.HTTP = &hh
	}
	if len(sp.Deliver) > 0 {
		ds := make([]job.Deliver, len(sp.Deliver))
		for i, d := range sp.Deliver {
			d.Webhook = auth.RedactURL(d.Webhook)
			d.Secret = keep(d.Secret)
			ds[i] = d
		}
		sp.Deliver = ds
	}
	return sp
}
