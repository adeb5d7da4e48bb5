# stepgate built-in rules that read the context of an operation rather
# than its plan (package stepgate.rules.builtin): which ref the pipeline
# runs for by its CI token's verified claims (input.pipeline), freeze
# windows (input.time), and who asks and how often (input.requester,
# input.history). None of them reads input.pipeline_unverified: what a
# pipeline says of itself is a claim, not an identity.
package stepgate.rules.builtin

import data.stepgate.lib

# --- pipeline.untrusted_ref ----------------------------------------------------
# input.pipeline is null unless the caller is a verified CI token.

verified_pipeline := input.pipeline if is_object(input.pipeline)

release_refs := [r | some r in object.get(lib.cfg, ["pipeline", "release_refs"], [])]

untrusted_reasons contains "its CI token says it runs for a pull request" if verified_pipeline.pull_request == true

untrusted_reasons contains sprintf("its CI token says ref %q is not protected", [verified_pipeline.ref]) if {
	verified_pipeline.ref_protected == false
}

untrusted_reasons contains sprintf("its CI token's ref %q is not one of policy.pipeline.release_refs", [ref]) if {
	count(release_refs) > 0
	ref := verified_pipeline.ref
	not release_ref(ref)
}

untrusted_reasons contains "no CI token vouches for it (policy.pipeline.require_verified)" if {
	object.get(lib.cfg, ["pipeline", "require_verified"], false) == true
	not verified_pipeline
}

release_ref(ref) if {
	some p in release_refs
	glob.match(p, null, ref)
}

findings contains f if {
	lib.production
	count(untrusted_reasons) > 0
	reason := sprintf("Untrusted pipeline: %s.", [concat("; ", sort(untrusted_reasons))])
	f := lib.finding("pipeline.untrusted_ref", [], reason)
}

# --- change.freeze ---------------------------------------------------------------
# input.time.windows names the configured windows active now (computed in
# Go from policy.freeze.windows and policy.timezone).

# object.get for "name": the projection test flags `.name`, which a
# change's projected input leaves out; these objects always carry it.
freeze_windows := {object.get(w, "name", ""): w | some w in object.get(lib.cfg, ["freeze", "windows"], [])}

freeze_approvers := [g | g := object.get(lib.cfg, ["freeze", "approvers"], ""); g != ""]

findings contains f if {
	some name in object.get(input, ["time", "windows"], [])
	w := freeze_windows[name]
	r := lib.cfg.rules["change.freeze"][lib.context]
	decision := freeze_decision(w, r)
	f := {
		"rule": "change.freeze",
		"decision": decision,
		"severity": object.get(r, "severity", ""),
		"addresses": [],
		"reason": sprintf("Change freeze %q is on (%s)%s.", [name, window_text(w), freeze_who(decision)]),
		"requirements": {
			"aal": object.get(r, "aal", 0),
			"approvals": object.get(r, "approvals", 0),
			"max_age": object.get(r, "max_age", 0),
			"groups": freeze_groups(decision),
		},
	}
}

freeze_decision(w, r) := w.decision if object.get(w, "decision", "") != ""

else := r.decision

freeze_groups(decision) := freeze_approvers if decision == "step_up"

else := []

freeze_who(decision) := sprintf(": only group %s may approve", [freeze_approvers[0]]) if {
	decision == "step_up"
	count(freeze_approvers) > 0
}

else := ""

window_text(w) := sprintf("weekly, %s to %s", [w.weekly.from, w.weekly.to]) if is_object(object.get(w, "weekly", null))

else := sprintf("%s to %s", [w.start, w.end])

# --- requester.first_time ----------------------------------------------------------
# input.history is null offline (stepgate eval): the rule needs the store.

findings contains f if {
	lib.production
	is_object(input.history)
	input.history.requester_applied == false
	something_to_do
	f := lib.finding("requester.first_time", [], sprintf("%s %q has never applied to workspace %q.", [
		requester_kind_text[input.requester.kind],
		requester_name,
		input.operation.workspace,
	]))
}

something_to_do if count(lib.changes) > 0

something_to_do if count(object.get(input.operation, "secrets", [])) > 0

something_to_do if input.operation.kind == "secret.read"

requester_name := object.get(input.requester, "name", "")

requester_kind_text := {"person": "Person", "ci": "CI identity", "token": "Token", "": "Requester"}

# --- requester.burst ---------------------------------------------------------------

findings contains f if {
	max := object.get(lib.cfg, ["burst", "max_checks"], 0)
	max > 0
	is_object(input.history)
	n := input.history.requester_checks_last_hour + 1
	n > max
	f := lib.finding("requester.burst", [], sprintf("%q asked for %d checks within an hour (more than policy.burst.max_checks, %d).", [
		requester_name, n, max,
	]))
}
