package stepgate.rules.builtin_test

import data.stepgate.lib
import data.stepgate.rules.builtin

change(addr, typ, action) := {"address": addr, "type": typ, "action": action, "before": null, "after": {}}

test_dev_change_passes if {
	count(builtin.findings) == 0 with input as {
		"operation": {"kind": "terraform.apply", "workspace": "billing-dev", "environment": ""},
		"plan": {"errored": false, "applyable": true},
		"changes": [change("aws_instance.web", "aws_instance", "update")],
	}
}
