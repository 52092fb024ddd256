#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: deprecation_warning
short_description: Emit a deprecation warning of this collection from a task
version_added: 0.1.0
description:
  - Shows O(msg) as a C([DEPRECATION WARNING]) of the edgex.sysmgmt collection, to be removed in
    O(version), and records it in the task result as a module's own deprecations are.
  - The collection's roles use it when a deprecated role variable is set (for example
    C(edgex_services) as the input of role C(edgex.sysmgmt.edgex_services)); a plain
    C(ansible.builtin.debug) message would not count as a deprecation (it is not shown with the
    other deprecation warnings, nor turned off by C(deprecation_warnings=false)).
  - Runs on the control node; changes nothing.
author:
  - edgex.sysmgmt maintainers (@edgex-sysmgmt)
options:
  msg:
    description: What is deprecated and what to use instead.
    type: str
    required: true
  version:
    description: The edgex.sysmgmt version that removes the deprecated feature.
    type: str
    required: true
attributes:
  action:
    description: Runs on the control node as an action plugin.
    support: full
  check_mode:
    description: Only emits a warning.
    support: full
  diff_mode:
    description: Nothing changes.
    support: none
  idempotent:
    description: Never changes anything.
    support: full
"""

EXAMPLES = r"""
- name: Warn that a role variable is deprecated
  edgex.sysmgmt.deprecation_warning:
    msg: edgex_old_name is deprecated; use edgex_new_name
    version: 0.2.0
  when: edgex_old_name is defined
"""

RETURN = r"""
msg:
  description: The deprecation message.
  returned: always
  type: str
"""
