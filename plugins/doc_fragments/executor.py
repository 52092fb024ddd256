# -*- coding: utf-8 -*-
# Copyright (c) edgex.sysmgmt contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment(object):
    # How a module reaches the services' executors on the gateway it runs on.
    DOCUMENTATION = r"""
options:
  executor:
    description:
      - Executor for services the manifest names none for (their target is then the executor's
        default, for Docker the edgex-compose container name C(edgex-<service>)).
    type: str
    choices: [docker, compose, systemd, snap]
    default: docker
  docker_host:
    description: Docker daemon URL for the docker executor. Defaults to E(DOCKER_HOST), else the local socket.
    type: str
"""
