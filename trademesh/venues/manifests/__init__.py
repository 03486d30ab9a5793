"""`trademesh venue-manifests NAME`: a venue's docker-compose service and Kubernetes manifest,
from the two templates beside this file, so adding a venue is one command, not copied blocks.

The live built-in venues' blocks in docker-compose.yml and their files in ops/k8s/base/venues/
are this command's output (tests/unit/test_venue_manifests.py holds them equal): a change for
every venue is made in the template, and the committed ones written again. The sim (the mesh's
own market, no credentials) and the example account (venue-binance-desk-b) are written by hand.

Placeholders are `{{name}}` (a venue's name, port, metrics port, summary, image, ...); a venue
from a package usually runs its own image (the trademesh image with the package installed):
--image names it.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trademesh.core.platform.config.env import venue_variable
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.core.platform.service.registry import METRICS_PORT_OFFSET

if TYPE_CHECKING:
    from trademesh.venues.registry import VenueEntry

__all__ = ["DEFAULT_IMAGE", "HAND_WRITTEN", "add_manifests_parser", "compose_service", "kubernetes_manifest"]

TEMPLATES = Path(__file__).parent
DEFAULT_IMAGE = "trademesh:latest"
# Built-in venues whose compose service and manifest are not the template's (see above).
HAND_WRITTEN = frozenset({"sim"})
_PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
_IMAGE = re.compile(r"[a-z0-9][\w.:/@-]*")
_PROFILE = re.compile(r"[a-z0-9][a-z0-9_-]*")
# The anchor line every compose venue service starts with (docker-compose.yml's x-service).
_SERVICE_ANCHOR = "    <<: *service\n"


def _values(entry: VenueEntry, image: str) -> dict[str, str]:
    return {
        "name": entry.name,
        "port": str(entry.default_port),
        "metrics_port": str(entry.default_port + METRICS_PORT_OFFSET),
        "summary": entry.summary,
        "variable_prefix": venue_variable(entry.name, "").removesuffix("_"),
        "image": image,
    }


def _render(template: str, values: dict[str, str]) -> str:
    text = (TEMPLATES / template).read_text()
    return _PLACEHOLDER.sub(lambda match: values[match[1]], text)


def _checked_image(image: str | None) -> str:
    if image is None:
        return DEFAULT_IMAGE
    if not _IMAGE.fullmatch(image):
        raise InvalidArgument.field("image", f"{image!r} is not an image reference (registry/name:tag)")
    return image


def compose_service(entry: VenueEntry, image: str | None = None, profile: str = "live") -> str:
    """The venue's service, to go under docker-compose.yml's `services:` (its anchors)."""
    if not _PROFILE.fullmatch(profile):
        raise InvalidArgument.field("profile", f"{profile!r} is not a compose profile name")
    text = _render("compose.yml.tmpl", {**_values(entry, _checked_image(image)), "profile": profile})
    if image is None:
        return text
    # Not the anchor's build of ops/Dockerfile: compose would tag that build with this name.
    own = f"    image: {image}  # the trademesh image with the venue's package installed\n"
    return text.replace(_SERVICE_ANCHOR, f"{_SERVICE_ANCHOR}{own}    build: !reset null\n", 1)


def kubernetes_manifest(entry: VenueEntry, image: str | None = None) -> str:
    """The venue's file for ops/k8s/base/venues/ (Deployment, Service, PodDisruptionBudget)."""
    return _render("kubernetes.yaml.tmpl", _values(entry, _checked_image(image)))


def add_manifests_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "venue-manifests",
        help="print a venue's docker-compose service or Kubernetes manifest (docs/venues.md)",
        description="Print a venue's docker-compose service (paste it under `services:` in "
        "docker-compose.yml) or its Kubernetes manifest (ops/k8s/base/venues/venue-NAME.yaml, listed in "
        "ops/k8s/base/kustomization.yaml), from the templates in trademesh/venues/manifests/.",
    )
    parser.add_argument("name", help="a venue (see `trademesh venues`), built in or from a package")
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--compose", action="store_true", help="the docker-compose service")
    target.add_argument("--kubernetes", action="store_true", help="the Kubernetes manifest")
    parser.add_argument(
        "--image", help=f"the image the venue runs: one with its package installed (default {DEFAULT_IMAGE})"
    )
    parser.add_argument(
        "--profile", default="live", help="with --compose: the compose profile that runs it (default live)"
    )
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> None:
    from trademesh.venues.registry import venue_entry

    entry = venue_entry(args.name)
    if entry.name in HAND_WRITTEN:
        raise FailedPrecondition(
            f"the {entry.name} venue's compose service and manifest are written by hand (venue-{entry.name})"
        )
    if args.compose:
        sys.stdout.write(compose_service(entry, args.image, args.profile))
    else:
        sys.stdout.write(kubernetes_manifest(entry, args.image))
