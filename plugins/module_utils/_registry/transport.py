# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)
"""One request to a registry, its transport failures said in the registry's words: both providers
send over ``_net/client`` and must name the registry, its endpoint and the request the same way."""

from __future__ import annotations

from .._errors import RegistryError, RegistryTLSError, RegistryUnavailableError
from .._net import client as http


def send(label, endpoint, what, request, *args):
    """``request(*args)`` (``_net.client.request`` or a stand-in of it), its failures raised as
    the registry errors the fallback rules know: ``label`` names the registry, ``what`` the request."""
    try:
        return request(*args)
    except http.TLSFailure as exc:
        raise RegistryTLSError("%s at %s failed the TLS check (%s): %s" % (label, endpoint, what, exc)) from None
    except http.Unreachable as exc:
        raise RegistryUnavailableError("%s at %s is unreachable (%s: %s)" % (label, endpoint, what, exc)) from None
    except http.NotHTTP as exc:
        raise RegistryError("%s at %s answered %s with something that is not HTTP (%s)"
                            % (label, endpoint, what, exc)) from None
