# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Emit a deprecation warning of this collection from a task (documentation: plugins/modules)."""

from __future__ import annotations

from ansible.plugins.action import ActionBase

COLLECTION = "edgex.sysmgmt"


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        _validation, args = self.validate_argument_spec(argument_spec=dict(
            msg=dict(type="str", required=True),
            version=dict(type="str", required=True),
        ))
        result = super(ActionModule, self).run(tmp, task_vars)
        # A result's deprecations are shown as [DEPRECATION WARNING] and kept in the task result,
        # exactly as a module's own deprecations are.
        result.update(changed=False, msg=args["msg"], deprecations=[
            dict(msg=args["msg"], version=args["version"], collection_name=COLLECTION)])
        return result
