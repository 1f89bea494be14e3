package zhipuai

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// Message helpers, named after the roles of docs/v4.md §3.

// SystemMessage returns {"role":"system","content":text}.
func SystemMessage(text string) Message {
	return Message{Role: RoleSystem, Content: Content{Text: text}}
}

// UserMessage returns {"role":"user","content":text}.
func UserMessage(text string) Message { return Message{Role: RoleUser, Content: Content{Text: text}} }

// AssistantMessage returns {"role":"assistant","content":text}, e.g. an
// earlier reply in a multi-turn conversation.
func AssistantMessage(text string) Message {
	return Message{Role: RoleAssistant, Content: Content{Text: text}}
}

// AssistantToolCallsMessage returns the assistant turn that asked for tool
// calls, to put back into the history before the ToolMessage answers.
func AssistantToolCallsMessage(calls ...ToolCall) Message {
	return Message{Role: RoleAssistant, ToolCalls: calls}
}

// ToolMessage returns a tool result: {"role":"tool","content":content,
// "tool_call_id":id}.
func ToolMessage(toolCallID, content string) Message {
	return Message{Role: RoleTool, Content: Content{Text: content}, ToolCallID: toolCallID}
}

// UserParts returns a user message made of parts (GLM-4V: text plus one
// image or video).
func UserParts(parts ...ContentPart) Message {
	if parts == nil {
		parts = []ContentPart{}
	}
	return Message{Role: RoleUser, Content: Content{Parts: parts}}
}

// ToParam turns a reply message into a request message, to append it to
// the conversation.
func (m CompletionMessage) ToParam() Message {
	return Message{Role: RoleAssistant, Content: Content{Text: m.Content}, ToolCalls: m.ToolCalls}
}

// TextPart returns {"type":"text","text":text}.
func TextPart(text string) ContentPart { return ContentPart{Type: PartText, Text: text} }

// ImageURLPart returns {"type":"image_url","image_url":{"url":url}}; url is
// an http(s) URL or a bare base64 image.
func ImageURLPart(url string) ContentPart {
	return ContentPart{Type: PartImageURL, ImageURL: &URLPart{URL: url}}
}

// ImageBase64Part returns an image part holding the bare base64 of img:
// no "data:image/…;base64," prefix, as the tutorial requires ("Base64
// 需要去掉前缀").
func ImageBase64Part(img []byte) ContentPart {
	return ImageURLPart(base64.StdEncoding.EncodeToString(img))
}

// MaxImageBytes is GLM-4V's limit for one image (docs/v4.md §3: ≤ 5 MB).
const MaxImageBytes = 5 << 20

// ImageFilePart reads a local jpg/png file (≤ 5 MB) and returns it as a
// bare-base64 image part.
func ImageFilePart(path string) (ContentPart, error) {
	f, err := os.Open(path)
	if err != nil {
		return ContentPart{}, fmt.Errorf("zhipuai: image: %w", err)
	}
	defer f.Close()
	img, err := io.ReadAll(io.LimitReader(f, MaxImageBytes+1))
	if err != nil {
		return ContentPart{}, fmt.Errorf("zhipuai: image: %w", err)
	}
	if len(img) > MaxImageBytes {
		return ContentPart{}, fmt.Errorf("zhipuai: image %s is larger than 5 MB (the GLM-4V limit)", path)
	}
	switch ct := http.DetectContentType(img); ct {
	case "image/jpeg", "image/png":
	default:
		return ContentPart{}, fmt.Errorf("zhipuai: image %s: GLM-4V takes jpg or png, this looks like %s", path, ct)
	}
	return ImageBase64Part(img), nil
}

// VideoURLPart returns {"type":"video_url","video_url":{"url":url}} (mp4,
// glm-4v-plus; it must be the first part).
func VideoURLPart(url string) ContentPart {
	return ContentPart{Type: PartVideoURL, VideoURL: &URLPart{URL: url}}
}

// FunctionTool returns a function tool. params is the JSON Schema of the
// arguments: a json.RawMessage, []byte or string of JSON text, or any value
// that encodes to a JSON object (a map or a struct); nil means none. A
// params value that cannot be used is reported by Create as a
// *ValidationError on tools[i].function.parameters.
func FunctionTool(name, description string, params any) Tool {
	def := &FunctionDef{Name: name, Description: description}
	switch p := params.(type) {
	case nil:
	case json.RawMessage:
		def.Parameters = p
	case []byte:
		def.Parameters = json.RawMessage(p)
	case string:
		def.Parameters = json.RawMessage(p)
	default:
		b, err := json.Marshal(p)
		if err != nil {
			b = []byte("invalid") // fails validation with a clear field name
		}
		def.Parameters = b
	}
	if len(def.Parameters) > 0 && !json.Valid(def.Parameters) {
		// Keep encoding possible; validation names the field.
		def.Parameters = json.RawMessage(`"invalid"`)
	}
	return Tool{Type: ToolTypeFunction, Function: def}
}

// NewRetrievalTool returns a knowledge-base retrieval tool; the template
// may use {{knowledge}} and {{question}}.
func NewRetrievalTool(knowledgeID, promptTemplate string) Tool {
	return Tool{Type: ToolTypeRetrieval, Retrieval: &RetrievalTool{KnowledgeID: knowledgeID, PromptTemplate: promptTemplate}}
}

// NewWebSearchTool returns a web_search tool with the given settings.
func NewWebSearchTool(cfg WebSearchTool) Tool {
	return Tool{Type: ToolTypeWebSearch, WebSearch: &cfg}
}

// WebSearchOff returns {"type":"web_search","web_search":{"enable":false}},
// which stops glm-4 from searching on its own (docs/v4.md §3 "Tools").
func WebSearchOff() Tool { return NewWebSearchTool(WebSearchTool{Enable: Ptr(false)}) }

// stripDataURI removes a "data:…;base64," prefix, which the platform does
// not accept (tutorial: "Base64 需要去掉前缀"; the Python SDK strips it too).
func stripDataURI(u string) (string, bool) {
	if !strings.HasPrefix(u, "data:") {
		return u, false
	}
	i := strings.Index(u, ";base64,")
	if i < 0 {
		return u, false
	}
	return u[i+len(";base64,"):], true
}

// stripImagePrefixes returns msgs with data-URI prefixes removed from image
// parts, copying only what changes so the caller's messages stay intact.
func stripImagePrefixes(msgs []Message) []Message {
	out := msgs
	copied := false
	for i, m := range msgs {
		var parts []ContentPart
		for j, p := range m.Content.Parts {
			if p.Type != PartImageURL || p.ImageURL == nil {
				continue
			}
			bare, ok := stripDataURI(p.ImageURL.URL)
			if !ok {
				continue
			}
			if !copied {
				out = append([]Message(nil), msgs...)
				copied = true
			}
			if parts == nil {
				parts = append([]ContentPart(nil), m.Content.Parts...)
			}
			u := *p.ImageURL
			u.URL = bare
			parts[j].ImageURL = &u
		}
		if parts != nil {
			out[i].Content.Parts = parts
		}
	}
	return out
}
