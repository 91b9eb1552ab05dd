"""`huxley audio ...`: the local audio devices audio-io can use."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

audio_app = typer.Typer(help="Local audio devices (for HUXLEY_AUDIO_BACKEND=local).", no_args_is_help=True)


@audio_app.command()
def devices(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output")] = False) -> None:
    """List microphones and speakers; choose one with HUXLEY_AUDIO_INPUT_DEVICE /
    HUXLEY_AUDIO_OUTPUT_DEVICE (an index, a name or a unique part of a name)."""
    try:
        import pyaudio

        from huxley_audio_io.devices import list_devices
    except ImportError as exc:
        typer.echo(f"huxley audio: PyAudio is not available ({exc}); install huxley-audio-io", err=True)
        raise typer.Exit(2) from None
    pa = pyaudio.PyAudio()
    try:
        found = list_devices(pa)
    finally:
        pa.terminate()
    if as_json:
        typer.echo(json.dumps([asdict(d) for d in found], indent=2))
        return
    if not found:
        typer.echo("No audio devices found (PortAudio sees none).")
        raise typer.Exit(1)
    typer.echo(f"{'index':>5}  {'in':>3}  {'out':>3}  {'rate':>6}  {'api':<6} name")
    for d in found:
        marks = " ".join(
            m for m, on in (("[default in]", d.default_input), ("[default out]", d.default_output)) if on
        )
        columns = f"{d.index:>5}  {d.inputs:>3}  {d.outputs:>3}  {d.default_rate:>6}  {d.host_api:<6}"
        typer.echo(f"{columns} {d.name} {marks}".rstrip())
