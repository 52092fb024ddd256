# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""The errors of edgex.sysmgmt: one tree, every message naming the object and the cause."""

from __future__ import annotations


class EdgeXError(Exception):
    """Base of every expected failure; the message names the object and the cause."""


class InvalidNameError(EdgeXError, ValueError):
    pass


class RegistryError(EdgeXError):
    """The registry answered, but not usefully (bad JSON, unexpected shape, 4xx)."""


class RegistryUnavailableError(RegistryError):
    """Connection refused, timeout or 5xx: the registry may be down; fallback is allowed."""


class RegistryServerError(RegistryUnavailableError):
    """The registry answered 5xx: it is there but failing; fallback is allowed, and said so."""


class RegistryAuthError(RegistryError):
    """401/403: a wrong or missing token. Never silently falls back unless asked to."""


class RegistryFilteredError(RegistryAuthError):
    """The registry filtered its answer by ACLs: the token cannot see everything, so the answer
    says nothing about what is absent. As serious as a 403."""


class RegistryTLSError(RegistryAuthError):
    """The registry could not prove who it is (unknown CA, name mismatch, expired certificate), or our
    own certificate could not be loaded. As serious as a 403: never an "unreachable" fallback."""


class ManifestError(EdgeXError):
    """The manifest file is missing, unreadable or invalid."""


class ExecutorError(EdgeXError):
    """An executor could not act (tool missing, daemon down, target unknown)."""
