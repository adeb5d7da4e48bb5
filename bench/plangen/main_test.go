package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestGenerateSmallPlan(t *testing.T) {
	var buf bytes.Buffer
	st, err := generate(&buf, 200, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st.total != int64(buf.Len()) {
		t.Errorf("stats total %d, wrote %d bytes", st.total, buf.Len())
	}
	var plan map[string]json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &plan); err != nil {
		t.Fatalf("output is not valid JSON: %v", err)
	}
	for _, k := range []string{
		"format_version", "terraform_version", "variables", "planned_values", "resource_drift",
		"resource_changes", "output_changes", "prior_state", "configuration", "relevant_attributes",
		"checks", "timestamp", "applyable", "complete", "errored",
	} {
		if _, ok := plan[k]; !ok {
			t.Errorf("section %s is missing", k)
		}
	}
	if got := string(plan["format_version"]); got != `"1.2"` {
		t.Errorf("format_version = %s", got)
	}
	if got := string(plan["terraform_version"]); got != `"1.9.5"` {
		t.Errorf("terraform_version = %s", got)
	}

	var changes []struct {
		Address       string `json:"address"`
		ModuleAddress string `json:"module_address"`
		Mode          string `json:"mode"`
		Type          string `json:"type"`
		ProviderName  string `json:"provider_name"`
		Change        struct {
			Actions      []string        `json:"actions"`
			Before       json.RawMessage `json:"before"`
			After        json.RawMessage `json:"after"`
			ReplacePaths [][]any         `json:"replace_paths"`
		} `json:"change"`
	}
	if err := json.Unmarshal(plan["resource_changes"], &changes); err != nil {
		t.Fatal(err)
	}
	if len(changes) != 200 {
		t.Fatalf("%d resource_changes, want 200", len(changes))
	}
	seen := map[string]bool{}
	actions := map[string]int{}
	providers := map[string]bool{}
	for _, c := range changes {
		if seen[c.Address] {
			t.Errorf("duplicate address %s", c.Address)
		}
		seen[c.Address] = true
		if c.ModuleAddress != "" && !strings.HasPrefix(c.Address, c.ModuleAddress+".") {
			t.Errorf("%s is not inside %s", c.Address, c.ModuleAddress)
		}
		if !strings.HasPrefix(c.ProviderName, "registry.terraform.io/hashicorp/") {
			t.Errorf("%s: provider_name %q", c.Address, c.ProviderName)
		}
		providers[c.ProviderName] = true
		actions[strings.Join(c.Change.Actions, ",")]++
		isNull := func(r json.RawMessage) bool { return len(r) == 0 || string(r) == "null" }
		switch strings.Join(c.Change.Actions, ",") {
		case "create":
			if !isNull(c.Change.Before) || isNull(c.Change.After) {
				t.Errorf("%s: create with before %s", c.Address, c.Change.Before)
			}
		case "delete":
			if isNull(c.Change.Before) || !isNull(c.Change.After) {
				t.Errorf("%s: delete with after %s", c.Address, c.Change.After)
			}
		}
	}
	for _, a := range []string{"create", "update", "no-op", "delete"} {
		if actions[a] == 0 {
			t.Errorf("no %s action in %v", a, actions)
		}
	}
	if actions["delete,create"]+actions["create,delete"] == 0 {
		t.Errorf("no replacement in %v", actions)
	}
	if len(providers) < 3 {
		t.Errorf("only providers %v", providers)
	}

	var planned struct {
		RootModule struct {
			Resources    []json.RawMessage `json:"resources"`
			ChildModules []struct {
				Address string `json:"address"`
			} `json:"child_modules"`
		} `json:"root_module"`
	}
	if err := json.Unmarshal(plan["planned_values"], &planned); err != nil {
		t.Fatal(err)
	}
	if len(planned.RootModule.ChildModules) == 0 {
		t.Error("planned_values has no child_modules")
	}
	var prior struct {
		Values struct {
			RootModule struct {
				Resources []json.RawMessage `json:"resources"`
			} `json:"root_module"`
		} `json:"values"`
	}
	if err := json.Unmarshal(plan["prior_state"], &prior); err != nil {
		t.Fatal(err)
	}
	var config struct {
		ProviderConfig map[string]any `json:"provider_config"`
		RootModule     struct {
			Resources   []map[string]any `json:"resources"`
			ModuleCalls map[string]any   `json:"module_calls"`
		} `json:"root_module"`
	}
	if err := json.Unmarshal(plan["configuration"], &config); err != nil {
		t.Fatal(err)
	}
	if len(config.ProviderConfig) == 0 || len(config.RootModule.Resources) == 0 || len(config.RootModule.ModuleCalls) == 0 {
		t.Errorf("configuration is incomplete: %d providers, %d resources, %d module calls",
			len(config.ProviderConfig), len(config.RootModule.Resources), len(config.RootModule.ModuleCalls))
	}
}

func TestGenerateIsDeterministic(t *testing.T) {
	var a, b, c bytes.Buffer
	if _, err := generate(&a, 300, 42); err != nil {
		t.Fatal(err)
	}
	if _, err := generate(&b, 300, 42); err != nil {
		t.Fatal(err)
	}
	if _, err := generate(&c, 300, 43); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same seed gave different plans")
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("different seeds gave the same plan")
	}
}

func TestGenerateEdgeSizes(t *testing.T) {
	for _, n := range []int{0, 1, 7} {
		var buf bytes.Buffer
		if _, err := generate(&buf, n, 1); err != nil {
			t.Fatal(err)
		}
		var plan struct {
			ResourceChanges []json.RawMessage `json:"resource_changes"`
		}
		if err := json.Unmarshal(buf.Bytes(), &plan); err != nil {
			t.Fatalf("%d changes: invalid JSON: %v", n, err)
		}
		if len(plan.ResourceChanges) != n {
			t.Errorf("%d resource_changes, want %d", len(plan.ResourceChanges), n)
		}
	}
}
