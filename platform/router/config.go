package router

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/glmkit/glmkit/platform"
	"github.com/glmkit/glmkit/platform/upstream"
)

// Backend types of the config file. The configurable ones are the
// entries of upstream's type table; builtin is always present and named
// here only to explain that it needs no entry.
const (
	TypeZhipu   = upstream.TypeZhipu
	TypeOpenAI  = upstream.TypeOpenAI
	TypeBuiltin = "builtin"
)

// Defaults of the config file.
const (
	DefaultTimeout         = 300 * time.Second // Python SDK's own timeout (docs/v4.md §6)
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 30 * time.Second
)

// Config is the backends section of glm serve's --config JSON file. See
// notes/backends.md for the format with an example.
type Config struct {
	Backends       []BackendConfig `json:"backends"`
	CircuitBreaker BreakerConfig   `json:"circuit_breaker"`
	Builtin        BuiltinConfig   `json:"builtin"`
	// Server holds glm serve's own settings (its flag names as keys); the
	// router ignores it and cmd/glm applies it under the command line.
	Server json.RawMessage `json:"server,omitempty"`
}

// BackendConfig is one upstream.
type BackendConfig struct {
	// Name identifies the backend in logs, metrics and the request log.
	Name string `json:"name"`
	// Type is "zhipu", "openai" or "builtin".
	Type string `json:"type"`
	// BaseURL: zhipu defaults to the cloud's V4 base; openai needs the
	// engine's …/v1 base.
	BaseURL string `json:"base_url,omitempty"`
	// APIKey is the upstream key; APIKeyEnv names an environment variable
	// holding it instead (keeps secrets out of the file).
	APIKey    string `json:"api_key,omitempty"`
	APIKeyEnv string `json:"api_key_env,omitempty"`
	// Flavor names the engine behind an openai backend ("vllm", "sglang",
	// "ollama", "llamacpp", "tei") so its known quirks are handled; optional.
	Flavor string `json:"flavor,omitempty"`
	// ToolParser (openai backends): "auto" (default) turns tool calls the
	// engine left in its text into V4 tool calls: GLM-4 native ones
	// ("name\n{json}") for models whose upstream name looks like GLM-4 /
	// GLM-4-0414, GLM-4.5+ markup ("<tool_call>name<arg_key>…") for GLM-4.5
	// and later; "glm4" / "glm45" parse that form for every model of the
	// backend (and on vLLM also send tool_choice "none", which a vLLM
	// without --tool-call-parser needs to accept tools at all); "none"
	// never parses.
	ToolParser string `json:"tool_parser,omitempty"`
	// Models served; for zhipu an empty list means every model of the
	// Zhipu catalogue. Entries may be plain strings ("glm-4").
	Models []ModelConfig `json:"models,omitempty"`
	// Priority: higher values are tried first; equal priorities share the
	// load by Weight (default 1).
	Priority int `json:"priority,omitempty"`
	Weight   int `json:"weight,omitempty"`
	// Timeout bounds a sync call and the wait for a stream's first chunk
	// (default 300s). After the first chunk a stream runs as long as it runs.
	Timeout Duration `json:"timeout,omitzero"`
	// MaxConcurrency caps calls in flight to this backend (0 = no cap); a
	// full backend is skipped like an unhealthy one.
	MaxConcurrency int `json:"max_concurrency,omitempty"`
}

// ModelConfig is one model a backend serves.
type ModelConfig struct {
	// Name is the client-facing model name.
	Name string `json:"name"`
	// Upstream is the engine's own name (e.g. "THUDM/glm-4-9b-chat");
	// default Name.
	Upstream string `json:"upstream,omitempty"`
	// Kind, ContextTokens, MaxOutput and Dimensions default to the Zhipu
	// catalogue entry of Name when there is one; Kind otherwise defaults to
	// "chat", and embedding models need Dimensions.
	Kind          platform.ModelKind `json:"kind,omitempty"`
	ContextTokens int                `json:"context_tokens,omitempty"`
	MaxOutput     int                `json:"max_output,omitempty"`
	Dimensions    []int              `json:"dimensions,omitempty"`
	// Thinking and Tools state what the models list shows (docs/v4.md §11);
	// absent, they come from the Zhipu catalogue, else Tools is true for
	// chat models and Thinking for GLM-4.5+ upstream names.
	Thinking *bool `json:"thinking,omitempty"`
	Tools    *bool `json:"tools,omitempty"`
}

// UnmarshalJSON accepts "glm-4" as a short form of {"name":"glm-4"}.
func (m *ModelConfig) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		*m = ModelConfig{}
		return json.Unmarshal(b, &m.Name)
	}
	type plain ModelConfig
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*m = ModelConfig(p)
	return nil
}

// BreakerConfig tunes the per-backend circuit breaker: after Failures
// consecutive failures a backend is skipped for Cooldown, then one probe
// call is let through; a success closes the circuit again.
type BreakerConfig struct {
	Failures int      `json:"failures,omitempty"`
	Cooldown Duration `json:"cooldown,omitzero"`
}

// BuiltinConfig configures the always-present builtin embedding backend.
type BuiltinConfig struct {
	// Aliases are extra client-facing names for the builtin model, served
	// only where no configured backend serves that name; none by default.
	// ["embedding-2"] lets the V4 tutorial's embeddings run offline, at
	// the operator's choice: the replies' model field and /models then say
	// that the builtin model answered.
	Aliases *[]string `json:"aliases,omitempty"`
}

// Duration is a time.Duration written as "30s" (or a number of seconds).
type Duration time.Duration

// UnmarshalJSON accepts "1m30s" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("duration %q: use a form like \"30s\" or \"2m\"", s)
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: use a string like \"30s\" or a number of seconds", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON writes the "30s" form.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// LoadConfig reads and checks a config file. Unknown keys are errors, so a
// typo ("prioirty") is caught at start-up instead of silently ignored.
func LoadConfig(path string) (Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("backend config: %w", err)
	}
	return ParseConfig(b)
}

// ParseConfig decodes and checks config JSON. Lines may carry // comments
// (outside strings), so a config file can explain itself.
func ParseConfig(b []byte) (Config, error) {
	b = stripComments(b)
	var cfg Config
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cfg); err != nil {
		return Config{}, fmt.Errorf("backend config: %s", describeJSONError(b, err))
	}
	if dec.More() {
		return Config{}, errors.New("backend config: unexpected data after the JSON object")
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// stripComments blanks // comments outside JSON strings with spaces, so
// the offsets (and line numbers) of errors stay those of the file.
func stripComments(b []byte) []byte {
	out := append([]byte(nil), b...)
	inString, escaped := false, false
	for i := 0; i < len(out); i++ {
		c := out[i]
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			for ; i < len(out) && out[i] != '\n'; i++ {
				out[i] = ' '
			}
		}
	}
	return out
}

// describeJSONError adds a line number to syntax errors.
func describeJSONError(b []byte, err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
		return fmt.Sprintf("line %d: %v", line, err)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		line := 1 + bytes.Count(b[:min(int(te.Offset), len(b))], []byte("\n"))
		return fmt.Sprintf("line %d: field %q: %v", line, te.Field, err)
	}
	return err.Error()
}

// Validate checks what can be checked without the environment.
func (c *Config) Validate() error {
	seen := map[string]bool{}
	for i := range c.Backends {
		b := &c.Backends[i]
		where := fmt.Sprintf("backend config: backends[%d]", i)
		if b.Name == "" {
			return fmt.Errorf("%s: name is required", where)
		}
		where = fmt.Sprintf("backend config: backend %q", b.Name)
		if seen[b.Name] {
			return fmt.Errorf("%s: duplicate name", where)
		}
		seen[b.Name] = true
		typ, known := upstream.LookupType(b.Type)
		switch {
		case b.Type == TypeBuiltin:
			return fmt.Errorf("%s: the builtin backend is always present; name its extra model names in \"builtin\": {\"aliases\": [...]}", where)
		case b.Type == "":
			return fmt.Errorf("%s: type is required (%s)", where, upstream.TypeNames())
		case !known:
			return fmt.Errorf("%s: unknown type %q (%s)", where, b.Type, upstream.TypeNames())
		}
		if err := typ.Check(b.settings(b.APIKey, nil)); err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if b.BaseURL != "" && !strings.HasPrefix(b.BaseURL, "http://") && !strings.HasPrefix(b.BaseURL, "https://") {
			return fmt.Errorf("%s: base_url must start with http:// or https://", where)
		}
		if b.APIKey != "" && b.APIKeyEnv != "" {
			return fmt.Errorf("%s: set api_key or api_key_env, not both", where)
		}
		if b.Weight < 0 || b.MaxConcurrency < 0 || b.Timeout < 0 {
			return fmt.Errorf("%s: weight, max_concurrency and timeout must not be negative", where)
		}
		names := map[string]bool{}
		for j := range b.Models {
			m := &b.Models[j]
			if m.Name == "" {
				return fmt.Errorf("%s: models[%d]: name is required", where, j)
			}
			if names[m.Name] {
				return fmt.Errorf("%s: model %q listed twice", where, m.Name)
			}
			names[m.Name] = true
			if _, err := m.info(); err != nil {
				return fmt.Errorf("%s: model %q: %w", where, m.Name, err)
			}
		}
	}
	if c.CircuitBreaker.Failures < 0 || c.CircuitBreaker.Cooldown < 0 {
		return errors.New("backend config: circuit_breaker values must not be negative")
	}
	return nil
}

// settings are what the backend's type sees of b, with the resolved key.
func (b *BackendConfig) settings(key string, c *http.Client) upstream.Settings {
	return upstream.Settings{Name: b.Name, BaseURL: b.BaseURL, APIKey: key, APIKeyEnv: b.APIKeyEnv,
		Flavor: b.Flavor, ToolParser: b.ToolParser, Models: len(b.Models), HTTPClient: c}
}

// info is the catalogue entry a model config describes.
func (m *ModelConfig) info() (platform.ModelInfo, error) {
	info, known := platform.LookupZhipuModel(m.Name)
	if !known {
		info = platform.ModelInfo{ID: m.Name, Kind: platform.KindChat}
		up := cmp.Or(m.Upstream, m.Name)
		info.Caps = platform.Capabilities{Tools: true, Thinking: upstream.GLM45ToolModel(up)}
	}
	info.OwnedBy = "glmkit"
	if known {
		info.OwnedBy = platform.OwnerZhipu
	}
	if m.Kind != "" {
		switch m.Kind {
		case platform.KindChat, platform.KindVision, platform.KindEmbedding, platform.KindImage, platform.KindRerank:
		default:
			return info, fmt.Errorf("unknown kind %q (chat, vision, embedding, image or rerank)", m.Kind)
		}
		if known && m.Kind != info.Kind {
			info.Dimensions = nil
		}
		info.Kind = m.Kind
	}
	if m.ContextTokens < 0 || m.MaxOutput < 0 {
		return info, errors.New("context_tokens and max_output must not be negative")
	}
	if m.ContextTokens > 0 {
		info.ContextTokens = m.ContextTokens
	}
	if m.MaxOutput > 0 {
		info.MaxOutput = m.MaxOutput
	}
	if len(m.Dimensions) > 0 {
		for _, d := range m.Dimensions {
			if d <= 0 {
				return info, errors.New("dimensions must be positive")
			}
		}
		info.Dimensions = append([]int(nil), m.Dimensions...)
	}
	if info.Kind == platform.KindEmbedding && len(info.Dimensions) == 0 {
		return info, errors.New("an embedding model needs dimensions (e.g. [1024] for bge-m3)")
	}
	if info.Kind != platform.KindEmbedding {
		info.Dimensions = nil
	}
	if m.Thinking != nil {
		info.Caps.Thinking = *m.Thinking
	}
	if m.Tools != nil {
		info.Caps.Tools = *m.Tools
	}
	if !info.Chat() {
		info.Caps = platform.Capabilities{}
	}
	info.Caps.Vision = info.Kind == platform.KindVision
	return info, nil
}

// Environment variables read by ConfigFromEnv (the SDK's names, docs/v4.md §1).
const (
	EnvAPIKey  = "ZHIPUAI_API_KEY"
	EnvBaseURL = "ZHIPUAI_BASE_URL"
)

// ConfigFromEnv builds a config with one zhipu backend from
// ZHIPUAI_API_KEY (and ZHIPUAI_BASE_URL when set), serving every model of
// the Zhipu catalogue. ok is false when no key is set.
func ConfigFromEnv(getenv func(string) string) (cfg Config, ok bool) {
	key := strings.TrimSpace(getenv(EnvAPIKey))
	if key == "" {
		return Config{}, false
	}
	return Config{Backends: []BackendConfig{{
		Name:    "zhipu",
		Type:    TypeZhipu,
		BaseURL: strings.TrimSpace(getenv(EnvBaseURL)),
		APIKey:  key,
	}}}, true
}
