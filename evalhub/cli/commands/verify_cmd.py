from __future__ import annotations

import json
from pathlib import Path

import click

from evalhub.app.project import load_project
from evalhub.app.verify import (
    ImageVerification,
    Verification,
    verify_model_image,
    verify_result,
)
from evalhub.cli.errors import EXIT_OK, EXIT_PENDING
from evalhub.cli.output import FORMAT_OPTION, INSECURE_OPTION, out
from evalhub.core.errors import ConfigError


@click.command()
@click.argument("reference", required=False)
@click.option(
    "--model-image",
    "image",
    metavar="REPOSITORY@sha256:HEX",
    help="Verify every evalhub result attached to this model image instead (a ModelCar, "
    "pinned by digest; HOST[:PORT]/REPO[:TAG]@sha256:…).",
)
@click.option(
    "--key",
    "keys",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A trusted public key (PEM); repeat for several. Default: signing.trusted_keys.",
)
@INSECURE_OPTION
@click.option("--format", "fmt", type=FORMAT_OPTION, default="text", show_default=True)
def verify(
    reference: str | None,
    image: str | None,
    keys: tuple[Path, ...],
    insecure: bool | None,
    fmt: str,
) -> int:
    """Check that a published result is what a trusted key signed.

    REFERENCE is oci://HOST/REPO:TAG, oci://HOST/REPO@sha256:…, oci-layout:DIR:TAG (or
    @sha256:…; DIR relative to the project root), or a bare TAG or sha256:… in the project's
    registry.target. The manifest and every layer are re-hashed, and an attached DSSE
    attestation must be signed by a trusted key, name this manifest's digest, and state the
    scores the result layer holds.

    With --model-image, every evalhub result attached to that image is listed and verified
    the same way, and must be attached to and judge that exact image digest.
    Exit 0 when verified, 2 when it is not (like gate and audit), 1 on an error (an
    unreachable registry, an unknown reference, no trusted key).
    """
    if (reference is None) == (image is None):
        raise ConfigError(
            "give a result REFERENCE or --model-image, not both and not neither",
            "e.g. `evalhub verify quality-0123456789abcdef` or "
            "`evalhub verify --model-image registry.example/models/granite@sha256:…`",
        )
    project = load_project()
    if image is not None:
        attached = verify_model_image(project, image, list(keys) or None, insecure)
        out(json.dumps(attached.as_dict(), indent=2) if fmt == "json" else render_image(attached))
        return EXIT_OK if attached.verified else EXIT_PENDING
    assert reference is not None
    result = verify_result(project, reference, list(keys) or None, insecure)
    out(json.dumps(result.as_dict(), indent=2) if fmt == "json" else render(result))
    return EXIT_OK if result.verified else EXIT_PENDING


def render_image(image: ImageVerification) -> str:
    count = len(image.results)
    good = sum(r.verified for r in image.results)
    mark = "✓ verified" if image.verified else "✗ not verified"
    lines = [f"{mark}: {image.image} ({good} of {count} attached result(s) verified)"]
    if image.reason:
        lines.append(f"  ✗ {image.reason}")
    for result in image.results:
        lines.extend("  " + line for line in render(result).splitlines())
    return "\n".join(lines)


def render(result: Verification) -> str:
    head = result.reference + (
        f"@{result.digest}" if result.digest and "@" not in result.reference else ""
    )
    lines = [f"{'✓ verified' if result.verified else '✗ not verified'}: {head}"]
    for check in result.passed:
        lines.append(f"  ✓ {check.name:<12} {check.detail}")
    if result.reason:
        lines.append(f"  ✗ {result.reason}")
    record = result.record
    if result.verified and record is not None:
        aggregate = "—" if record.aggregate is None else f"{record.aggregate:.3f}"
        lines.append(f"  {record.evaluation}: verdict {record.verdict}, aggregate {aggregate}")
        for b in record.benchmarks:
            score = "—" if b.score is None else f"{b.score:.3f}"
            lines.append(f"    {b.key:<20} {score}")
    return "\n".join(lines)
