// A differential origin in Go's standard library only (no Go MCP SDK can be installed here:
// the Go module registry is not reachable). It decodes JSON-RPC the way Go MCP servers do,
// with encoding/json into structs whose fields carry `json:"name"` tags, so it answers what
// Go makes of a body: member names matched case-insensitively (`Name`, `NAME`, `ſ` for s,
// `K` (U+212A) for k) and the last one kept. Like many custom handlers it serves every HTTP
// method that carries a body. Same surface and log as surface.mjs.
//
//	go run . --port PORT --log FILE
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"io"
	"log"
	"net/http"
	"os"
	"strings"
	"sync"
)

var (
	tools     = []string{"search", "delete_all"}
	resources = []string{"file:///reports/q3.pdf", "file:///finance/secret.pdf"}
	templates = []string{"file:///reports/{name}.pdf", "file:///finance/{name}.pdf"}
	prompts   = []string{"summary", "payroll"}
)

type message struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      any             `json:"id"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
}

type named struct {
	Name string `json:"name"`
}

type located struct {
	URI string `json:"uri"`
}

type completion struct {
	Ref struct {
		Type string `json:"type"`
		Name string `json:"name"`
		URI  string `json:"uri"`
	} `json:"ref"`
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

type answer struct {
	JSONRPC string    `json:"jsonrpc"`
	ID      any       `json:"id"`
	Result  any       `json:"result,omitempty"`
	Error   *rpcError `json:"error,omitempty"`
}

type journal struct {
	mu   sync.Mutex
	file *os.File
}

func (j *journal) write(entry map[string]any) {
	line, _ := json.Marshal(entry)
	j.mu.Lock()
	defer j.mu.Unlock()
	j.file.Write(append(line, '\n'))
}

func contains(list []string, item string) bool {
	for _, x := range list {
		if x == item {
			return true
		}
	}
	return false
}

// The template a URI is read through: file:///<folder>/{name}.pdf with a name without '/'.
func templateOf(uri string) string {
	for _, t := range templates {
		prefix, suffix, _ := strings.Cut(t, "{name}")
		name := strings.TrimSuffix(strings.TrimPrefix(uri, prefix), suffix)
		if len(uri) > len(prefix)+len(suffix) && strings.HasPrefix(uri, prefix) && strings.HasSuffix(uri, suffix) && !strings.Contains(name, "/") {
			return t
		}
	}
	return ""
}

func text(s string) map[string]any {
	return map[string]any{"content": []any{map[string]any{"type": "text", "text": s}}}
}

func entries(key string, names []string) []any {
	var list []any
	for _, name := range names {
		list = append(list, map[string]any{key: name, "name": name})
	}
	return list
}

func (j *journal) dispatch(m message) answer {
	out := answer{JSONRPC: "2.0", ID: m.ID}
	invalid := &rpcError{Code: -32602, Message: "unknown name"}
	switch m.Method {
	case "initialize":
		out.Result = map[string]any{"protocolVersion": "2025-03-26", "capabilities": map[string]any{"tools": map[string]any{}, "resources": map[string]any{"subscribe": true}, "prompts": map[string]any{}, "completions": map[string]any{}}, "serverInfo": map[string]any{"name": "differential-go", "version": "1.0.0"}}
	case "ping":
		out.Result = map[string]any{}
	case "tools/list":
		out.Result = map[string]any{"tools": entries("name", tools)}
	case "resources/list":
		out.Result = map[string]any{"resources": entries("uri", resources)}
	case "resources/templates/list":
		out.Result = map[string]any{"resourceTemplates": entries("uriTemplate", templates)}
	case "prompts/list":
		out.Result = map[string]any{"prompts": entries("name", prompts)}
	case "tools/call", "prompts/get":
		var p named
		json.Unmarshal(m.Params, &p)
		list, event := tools, "tool"
		if m.Method == "prompts/get" {
			list, event = prompts, "prompt"
		}
		if !contains(list, p.Name) {
			out.Error = invalid
			break
		}
		j.write(map[string]any{"event": event, "name": p.Name})
		out.Result = text(p.Name + " ran")
		if m.Method == "prompts/get" {
			out.Result = map[string]any{"messages": []any{map[string]any{"role": "user", "content": map[string]any{"type": "text", "text": p.Name}}}}
		}
	case "resources/read", "resources/subscribe":
		var p located
		json.Unmarshal(m.Params, &p)
		template := templateOf(p.URI)
		if !contains(resources, p.URI) && template == "" {
			out.Error = invalid
			break
		}
		entry := map[string]any{"event": "resource", "uri": p.URI}
		if m.Method == "resources/subscribe" {
			entry["event"] = "subscribe"
		}
		if template != "" {
			entry["template"] = template
		}
		j.write(entry)
		out.Result = map[string]any{}
		if m.Method == "resources/read" {
			out.Result = map[string]any{"contents": []any{map[string]any{"uri": p.URI, "text": "contents of " + p.URI}}}
		}
	case "completion/complete":
		var p completion
		json.Unmarshal(m.Params, &p)
		switch {
		case p.Ref.Type == "ref/prompt" && contains(prompts, p.Ref.Name):
			j.write(map[string]any{"event": "complete", "prompt": p.Ref.Name})
		case p.Ref.Type == "ref/resource" && contains(templates, p.Ref.URI):
			j.write(map[string]any{"event": "complete", "template": p.Ref.URI})
		default:
			out.Error = invalid
		}
		if out.Error == nil {
			out.Result = map[string]any{"completion": map[string]any{"values": []string{"q3", "q4"}}}
		}
	default:
		out.Error = &rpcError{Code: -32601, Message: "Method not found"}
	}
	return out
}

func (j *journal) serve(w http.ResponseWriter, r *http.Request) {
	j.write(map[string]any{"event": "http", "method": r.Method, "path": r.URL.Path, "probe": r.Header.Get("X-Probe")})
	body, _ := io.ReadAll(r.Body)
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		w.Header().Set("Allow", "POST")
		http.Error(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"Method not allowed."}}`, http.StatusMethodNotAllowed)
		return
	}
	var batch []message
	single := body[0] != '['
	if single {
		var m message
		if err := json.Unmarshal(body, &m); err != nil {
			http.Error(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`, http.StatusBadRequest)
			return
		}
		batch = []message{m}
	} else if err := json.Unmarshal(body, &batch); err != nil {
		http.Error(w, `{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"Parse error"}}`, http.StatusBadRequest)
		return
	}
	var answers []answer
	for _, m := range batch {
		j.write(map[string]any{"event": "rpc", "method": m.Method, "id": m.ID})
		if m.ID != nil {
			answers = append(answers, j.dispatch(m))
		} else {
			j.dispatch(m)
		}
	}
	if len(answers) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if single {
		json.NewEncoder(w).Encode(answers[0])
	} else {
		json.NewEncoder(w).Encode(answers)
	}
}

func main() {
	port := flag.String("port", "", "the port to listen on, on 127.0.0.1")
	path := flag.String("log", "", "the log file")
	flag.Parse()
	if *port == "" || *path == "" {
		log.Fatal("usage: go_origin --port PORT --log FILE")
	}
	file, err := os.OpenFile(*path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		log.Fatal(err)
	}
	j := &journal{file: file}
	http.HandleFunc("/mcp", j.serve)
	log.Fatal(http.ListenAndServe("127.0.0.1:"+*port, nil))
}
