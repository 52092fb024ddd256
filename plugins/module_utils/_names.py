# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""Name rules: what may reach an argv list, a URL path or an Ansible group name.

EdgeX service keys, node names, container names, systemd units and snap apps are validated
here before any command runs or any request is sent, so a hostile name never gets further.
"""

from __future__ import annotations

import re

from ._errors import InvalidNameError


# EdgeX service keys, container names, systemd units and snap apps all fit this;
# anything else (spaces, slashes, shell metacharacters, leading dash) is refused
# before it reaches a command line or a URL path.
SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,127}$")


def validate_name(name, what="service name"):
    """Return ``name`` if it is safe for argv lists and URL paths, else raise InvalidNameError."""
    if not isinstance(name, str) or not SAFE_NAME.fullmatch(name):
        raise InvalidNameError(
            "invalid %s %r: must match %s" % (what, name, SAFE_NAME.pattern)
        )
    return name


def group_safe(name):
    """Ansible group names allow [A-Za-z0-9_]: core-data -> core_data."""
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


# Docker's own rule for container names (daemon/names.go), with a length cap for argv sanity.
DOCKER_CONTAINER_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,254}$")


# SAFE_NAME widened to what unit names really use: upper case (snap.Foo.bar) and '@' instances.
SYSTEMD_UNIT = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.@-]{0,246}\.service$")


def _invalid(what, target, rule):
    return InvalidNameError("invalid %s %r: %s" % (what, target, rule))


def _check(pattern, name, what):
    # fullmatch, not match: with match, "$" also accepts a trailing newline ("core-data\n").
    if not isinstance(name, str) or not pattern.fullmatch(name):
        raise _invalid(what, name, "must match %s" % pattern.pattern)
    return name


def validate_container_name(target):
    return _check(DOCKER_CONTAINER_NAME, target, "docker container name")


def _two_names(target, separator, what, form, first, second):
    """``<first><separator><second>`` -> (first, second), each a SAFE_NAME."""
    if not isinstance(target, str) or target.count(separator) != 1:
        raise _invalid(what, target, "must be %s" % form)
    left, right = target.split(separator)
    return validate_name(left, first), validate_name(right, second)


def validate_compose_target(target):
    """``<project>/<service>`` -> (project, service)."""
    return _two_names(target, "/", "compose target", "<project>/<service>", "compose project name",
                      "compose service name")


def validate_systemd_unit(target):
    """Return the unit name with ``.service`` added when missing."""
    if not isinstance(target, str):
        raise _invalid("systemd unit", target, "must be a string")
    unit = target if target.endswith(".service") else target + ".service"
    return _check(SYSTEMD_UNIT, unit, "systemd unit")


def validate_snap_target(target):
    """``<snap>.<app>`` -> (snap, app); snap and app names contain no dots."""
    return _two_names(target, ".", "snap service", "<snap>.<app>", "snap name", "snap app name")
