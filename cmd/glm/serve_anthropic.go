package main

import (
	"fmt"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/platform/anthropic"
	"github.com/glmkit/glmkit/platform/router"
)

// anthropicFlags configure the Anthropic Messages endpoint
// (docs/anthropic.md): where it is served and how the model names agents
// send map to served models.
type anthropicFlags struct {
	prefixes     []string
	models       []string
	defaultModel string
	mappings     []anthropic.Mapping // parsed by check
}

func (o *anthropicFlags) register(f *pflag.FlagSet) {
	f.StringSliceVar(&o.prefixes, "anthropic-prefix", []string{anthropic.DefaultPrefix},
		"path prefixes to serve the Anthropic Messages API under (…/v1/messages; repeatable)")
	f.StringArrayVar(&o.models, "anthropic-model", nil,
		"map Anthropic model names to a served model, PATTERN=MODEL (glob, first match wins; repeatable), e.g. 'claude-haiku-*=glm-4-flash'")
	f.StringVar(&o.defaultModel, "anthropic-default-model", "",
		"served chat model for claude-* names no --anthropic-model maps (default: the first chat model of --config)")
}

func (o *anthropicFlags) check() error {
	for _, p := range o.prefixes {
		if !strings.HasPrefix(p, "/") {
			return fmt.Errorf("--anthropic-prefix %q must start with /", p)
		}
	}
	o.mappings = o.mappings[:0]
	for _, s := range o.models {
		m, err := anthropic.ParseMapping(s)
		if err != nil {
			return fmt.Errorf("--anthropic-model %w", err)
		}
		o.mappings = append(o.mappings, m)
	}
	return nil
}

// anthropicModels builds the model mapping once the backends are known:
// every mapping must name a served model, and claude-* names go to
// --anthropic-default-model, else to the first chat model the config
// lists (the Zhipu catalogue's glm-4 for a zhipu backend without a list).
func (o *anthropicFlags) anthropicModels(cfg router.Config, backends *router.Router) (*anthropic.Models, error) {
	for _, m := range o.mappings {
		if _, ok := backends.Model(m.Model); !ok {
			return nil, fmt.Errorf("--anthropic-model %s=%s: no backend serves %s", m.Pattern, m.Model, m.Model)
		}
	}
	def := o.defaultModel
	if def != "" {
		if _, ok := backends.Model(def); !ok {
			return nil, fmt.Errorf("--anthropic-default-model %s: no backend serves it", def)
		}
	} else {
		var preferred []string
		for _, b := range cfg.Backends {
			for _, m := range b.Models {
				preferred = append(preferred, m.Name)
			}
			if b.Type == router.TypeZhipu && len(b.Models) == 0 {
				preferred = append(preferred, "glm-4")
			}
		}
		def = anthropic.DefaultChatModel(backends, preferred...)
	}
	return &anthropic.Models{Mappings: o.mappings, Default: def, Catalogue: backends}, nil
}

// anthropicAPI builds the Messages handler on the same auth and metered
// call as the V4 API.
func (a *serveApp) anthropicAPI(cfg router.Config, backends *router.Router, calls anthropic.Calls, reg prometheus.Registerer) error {
	models, err := a.o.anthropic.anthropicModels(cfg, backends)
	if err != nil {
		return err
	}
	a.anthropic = anthropic.New(anthropic.Options{Models: models, Auth: a.auth, Calls: calls,
		Prefixes: a.o.anthropic.prefixes, MaxBodyBytes: a.o.maxBody, WriteTimeout: a.o.bounds.writeTimeout,
		Registerer: reg, Logger: a.log})
	a.log.Info("anthropic messages API", "prefixes", a.o.anthropic.prefixes, "claude_default", models.Default,
		"mappings", len(models.Mappings))
	return nil
}
