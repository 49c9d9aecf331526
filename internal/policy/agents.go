package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// A mint may pin several agent configurations — instructions and the
// names of the tools that go with them — among which the client may
// switch by session.update: what an Agents SDK handoff sends. The session
// config keeps them under AgentsKey, which never goes upstream
// (UpstreamConfig) and which no client-sent config may carry.
const AgentsKey = "x_voicegate_agents"

// Bounds of a mint's agents.
const (
	maxAgents           = 16
	maxAgentTools       = 64
	maxAgentInstrBytes  = 64 << 10
	maxAgentToolNameLen = 128
)

// Agent is one agent configuration a mint pinned.
type Agent struct {
	Instructions string   `json:"instructions"`
	Tools        []string `json:"tools"`
}

// ParseAgents reads a mint's "agents": an array of {instructions, tools}
// objects (tools: function tool names, handoff tools included), strictly.
func ParseAgents(raw json.RawMessage) ([]Agent, error) {
	if err := CheckJSON(raw); err != nil {
		return nil, fieldErr("agents", CodeInvalidType, "%v", err)
	}
	// Exact keys: encoding/json alone would take "Tools" for "tools".
	var objs []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &objs); err != nil {
		return nil, fieldErr("agents", CodeInvalidType, "expected an array of {instructions, tools} objects")
	}
	for i, o := range objs {
		for k := range o {
			if k != "instructions" && k != "tools" {
				return nil, fieldErr(fmt.Sprintf("agents[%d].%s", i, truncate(k, 40)), CodeUnknownParameter, "unknown parameter")
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var agents []Agent
	if err := dec.Decode(&agents); err != nil {
		return nil, fieldErr("agents", CodeInvalidType, "expected an array of {instructions, tools} objects")
	}
	if len(agents) == 0 || len(agents) > maxAgents {
		return nil, fieldErr("agents", CodeInvalidValue, "between 1 and %d agents", maxAgents)
	}
	for i, a := range agents {
		p := fmt.Sprintf("agents[%d]", i)
		if len(a.Instructions) > maxAgentInstrBytes {
			return nil, fieldErr(p+".instructions", CodeInvalidValue, "longer than %d bytes", maxAgentInstrBytes)
		}
		if len(a.Tools) > maxAgentTools {
			return nil, fieldErr(p+".tools", CodeInvalidValue, "more than %d tools", maxAgentTools)
		}
		for j, name := range a.Tools {
			if name == "" || len(name) > maxAgentToolNameLen {
				return nil, fieldErr(fmt.Sprintf("%s.tools[%d]", p, j), CodeInvalidValue, "a tool name of 1 to %d characters", maxAgentToolNameLen)
			}
		}
	}
	return agents, nil
}

// WithAgents returns cfg (a validated session config) keeping agents.
func WithAgents(cfg json.RawMessage, agents []Agent) (json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &m); err != nil {
		return nil, err
	}
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	b, err := json.Marshal(agents)
	if err != nil {
		return nil, err
	}
	m[AgentsKey] = b
	return json.Marshal(m)
}

// UpstreamConfig is cfg without the agents the mint pinned: what goes
// upstream and to API callers as the session config.
func UpstreamConfig(cfg json.RawMessage) json.RawMessage {
	if !bytes.Contains(cfg, []byte(AgentsKey)) {
		return cfg
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(cfg, &m) != nil {
		return cfg
	}
	delete(m, AgentsKey)
	out, _ := json.Marshal(m)
	return out
}

// agentsOf reads the agents a pinned config keeps.
func agentsOf(pinned map[string]any) []Agent {
	raw, ok := pinned[AgentsKey]
	if !ok {
		return nil
	}
	b, _ := json.Marshal(raw)
	var out []Agent
	_ = json.Unmarshal(b, &out)
	return out
}

// agentSwitch reports whether a session.update switches to one of the
// agents the mint pinned: its instructions are that agent's, and its
// tools (when it sends any) are named in that agent's list.
func agentSwitch(pinned, upd map[string]any) bool {
	instr, ok := upd["instructions"].(string)
	if !ok {
		return false
	}
	for _, a := range agentsOf(pinned) {
		if a.Instructions != instr {
			continue
		}
		tools, has := upd["tools"]
		if !has {
			return true
		}
		list, ok := tools.([]any)
		if !ok {
			return false
		}
		all := true
		for _, t := range list {
			m, _ := t.(map[string]any)
			name, _ := m["name"].(string)
			if !slices.Contains(a.Tools, name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

// AgentSwitch reports whether session (a session.update's or a
// session.updated's session object) holds one of the agent configurations
// the pinned config keeps.
func AgentSwitch(pinned, session json.RawMessage) bool {
	p, _ := decodeAny(pinned)
	u, _ := decodeAny(session)
	pm, _ := p.(map[string]any)
	um, _ := u.(map[string]any)
	return pm != nil && um != nil && agentSwitch(pm, um)
}
