// Package upstream talks to the backends that actually run models: the Zhipu
// cloud (V4 pass-through), OpenAI-compatible engines (vLLM, SGLang, Ollama,
// llama.cpp server; translated both ways, docs/peers.md §4) and the built-in
// offline embedding model. Every backend speaks V4 towards glm serve: the
// rest of the server never sees an engine's own shapes. The contracts the
// backends implement (platform.Backend and its capability interfaces) live
// in the root package; this package only adapts.
package upstream
