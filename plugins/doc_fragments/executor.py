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
    description:
      - Docker daemon URL for the docker executor. Defaults to E(DOCKER_HOST), else the local socket.
      - Every call to the Docker engine has one total deadline, connect and the whole answer included,
        the module's C(wait_timeout) where it acts on services and waits for them, else its C(probe_timeout)
        (at least 1 and at most 60 seconds); a stop or restart gets the stop timeout on top, the time
        the engine itself waits before it kills the container.
    type: str
  project:
    description:
      - Compose project of services the manifest gives no target for; their target is then
        C(<project>/<service>). Defaults to V(edgex).
    type: str
  project_directory:
    description:
      - Directory of the compose project, passed to docker compose as C(--project-directory) (compose
        files are looked up there when O(compose_files) is not given).
    type: path
  compose_files:
    description:
      - Compose files of the project, passed to docker compose as C(-f) in this order.
    type: list
    elements: path
  systemd_scope:
    description:
      - V(system) manages units of the system manager (C(systemctl)); V(user) units of the user
        manager of the user the module runs as (C(systemctl --user)).
    type: str
    choices: [system, user]
    default: system
"""
