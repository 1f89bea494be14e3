package upstream

import (
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
)

// Backend types a config file may name. The builtin embedding backend is
// not one of them: every server has it (NewBuiltin), none configures it.
const (
	TypeZhipu  = "zhipu"
	TypeOpenAI = "openai"
)

// Settings are one configured backend as its type sees them.
type Settings struct {
	Name    string
	BaseURL string
	// APIKey is the resolved upstream key; APIKeyEnv names the variable it
	// came from, so Check can see a key is configured before the
	// environment is read.
	APIKey     string
	APIKeyEnv  string
	Flavor     string
	ToolParser string
	// Models counts the models the config lists for the backend.
	Models     int
	HTTPClient *http.Client
	// StreamClient opens streams (the adapters' StreamClient).
	StreamClient *http.Client
	// StreamIdle is the adapters' StreamIdle (0: their default).
	StreamIdle time.Duration
}

func (s Settings) hasKey() bool { return s.APIKey != "" || s.APIKeyEnv != "" }

// Type is one kind of backend: how its settings are checked, how it is
// built, and which models it serves when the config lists none.
type Type struct {
	// Check rejects settings this type cannot work with. It runs on the
	// config alone (no environment, no network).
	Check func(s Settings) error
	// New builds the backend from checked settings.
	New func(s Settings) (platform.Backend, error)
	// DefaultModels, when set, is what a backend of this type serves when
	// its config lists no models; nil means a model list is required.
	DefaultModels func() []platform.ModelInfo
}

// types is the one table of backend types: adding a type is adding an
// entry here (and its adapter file); the router reads nothing else.
var types = map[string]Type{
	TypeZhipu: {
		Check: func(s Settings) error {
			if !s.hasKey() {
				return errors.New("a zhipu backend needs api_key or api_key_env")
			}
			if s.ToolParser != "" {
				return errors.New("tool_parser applies to openai backends only")
			}
			return checkFlavor(s.Flavor)
		},
		New: func(s Settings) (platform.Backend, error) {
			return NewZhipu(ZhipuOptions{Name: s.Name, BaseURL: s.BaseURL, APIKey: s.APIKey, HTTPClient: s.HTTPClient,
				StreamClient: s.StreamClient, StreamIdle: s.StreamIdle})
		},
		DefaultModels: platform.ZhipuModels,
	},
	TypeOpenAI: {
		Check: func(s Settings) error {
			if s.BaseURL == "" {
				return errors.New("base_url is required for an openai backend (the engine's …/v1 URL)")
			}
			if s.Models == 0 {
				return errors.New("models is required for an openai backend")
			}
			if err := checkFlavor(s.Flavor); err != nil {
				return err
			}
			switch s.ToolParser {
			case "", ToolParserAuto, ToolParserGLM4, ToolParserGLM45, ToolParserNone:
				return nil
			}
			return fmt.Errorf("unknown tool_parser %q (auto, glm4, glm45 or none)", s.ToolParser)
		},
		New: func(s Settings) (platform.Backend, error) {
			return NewOpenAI(OpenAIOptions{Name: s.Name, BaseURL: s.BaseURL, APIKey: s.APIKey, Flavor: s.Flavor,
				HTTPClient: s.HTTPClient, StreamClient: s.StreamClient, ToolParser: s.ToolParser, StreamIdle: s.StreamIdle})
		},
	},
}

func checkFlavor(f string) error {
	switch f {
	case "", FlavorVLLM, FlavorSGLang, FlavorOllama, FlavorLlamaCpp, FlavorTEI:
		return nil
	}
	return fmt.Errorf("unknown flavor %q (vllm, sglang, ollama, llamacpp or tei)", f)
}

// LookupType returns the backend type registered under name.
func LookupType(name string) (Type, bool) {
	t, ok := types[name]
	return t, ok
}

// TypeNames lists the configurable backend types, for error messages:
// "openai or zhipu".
func TypeNames() string {
	names := make([]string, 0, len(types))
	for n := range types {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, " or ")
}
