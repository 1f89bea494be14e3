package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/glmkit/glmkit/platform/router"
)

// The --config file holds the backends and, under "server", every other
// setting of glm serve by its flag name ("addr", "workers", "retention",
// …). A flag given on the command line wins over the file; an unknown key
// is an error, so a typo never silently leaves a default in place
// (docs/howto.md "Configure glm serve"; examples/serve.jsonc).

// notInFile says why a flag cannot be set in the config file ("" when it
// can).
func notInFile(name string) string {
	if name == "config" {
		return "it names the file itself"
	}
	return ""
}

// loadConfigFile reads --config once: the backends for Start, and the
// server settings applied to the flags not given on the command line.
func (o *serveOptions) loadConfigFile() error {
	if o.config == "" || o.loaded != nil {
		return nil
	}
	cfg, err := router.LoadConfig(o.config)
	if err != nil {
		return fmt.Errorf("--config: %w", err)
	}
	o.loaded = &cfg
	if len(cfg.Server) == 0 || o.flags == nil {
		return nil
	}
	return applyServerSettings(o.flags, o.config, cfg.Server)
}

// applyServerSettings sets each flag named in raw that the command line
// did not set.
func applyServerSettings(fs *pflag.FlagSet, path string, raw json.RawMessage) error {
	var settings map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&settings); err != nil {
		return fmt.Errorf("--config %s: \"server\" must be an object of glm serve's settings: %w", path, err)
	}
	names := make([]string, 0, len(settings))
	for k := range settings {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, name := range names {
		if why := notInFile(name); why != "" {
			return fmt.Errorf("--config %s: server.%s cannot be set in the file: %s", path, name, why)
		}
		fl := fs.Lookup(name)
		if fl == nil {
			return fmt.Errorf("--config %s: server.%s is not a setting of glm serve (the keys are its flag names: glm serve --help)", path, name)
		}
		if fl.Changed {
			continue // the command line wins
		}
		values, err := settingValues(settings[name])
		if err != nil {
			return fmt.Errorf("--config %s: server.%s: %w", path, name, err)
		}
		for _, v := range values {
			if err := fs.Set(name, v); err != nil {
				return fmt.Errorf("--config %s: server.%s: %w", path, name, err)
			}
		}
	}
	return nil
}

// settingValues turns a JSON value into the flag text(s) it stands for: a
// string as it is, a number or a boolean as written, a list one by one
// (repeatable flags such as prefix).
func settingValues(raw json.RawMessage) ([]string, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case json.Number:
		return []string{x.String()}, nil
	case bool:
		return []string{strconv.FormatBool(x)}, nil
	case []any:
		out := make([]string, 0, len(x))
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("want a list of strings, got %s", raw)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("want a string, number, boolean or list of strings, got %s", raw)
}
