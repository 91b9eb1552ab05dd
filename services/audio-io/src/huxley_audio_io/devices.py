"""Local audio devices (PortAudio through PyAudio): listing them and choosing
one by index or by name."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Direction = Literal["input", "output"]


class DeviceError(LookupError):
    """No device matches; the message lists what there is."""


@dataclass(frozen=True, slots=True)
class Device:
    index: int
    name: str
    inputs: int  # max input channels
    outputs: int  # max output channels
    default_rate: int
    host_api: str
    default_input: bool = False
    default_output: bool = False

    def channels(self, direction: Direction) -> int:
        return self.inputs if direction == "input" else self.outputs


def list_devices(pa: Any) -> list[Device]:
    """Every device PortAudio sees (`pa` is a pyaudio.PyAudio)."""
    defaults: dict[str, int | None] = {}
    for direction, getter in (
        ("input", pa.get_default_input_device_info),
        ("output", pa.get_default_output_device_info),
    ):
        try:
            defaults[direction] = int(getter()["index"])
        except (OSError, KeyError):
            defaults[direction] = None
    devices = []
    for index in range(pa.get_device_count()):
        info = pa.get_device_info_by_index(index)
        host_api = pa.get_host_api_info_by_index(info["hostApi"])["name"]
        devices.append(
            Device(
                index=index,
                name=str(info["name"]),
                inputs=int(info["maxInputChannels"]),
                outputs=int(info["maxOutputChannels"]),
                default_rate=int(info["defaultSampleRate"]),
                host_api=str(host_api),
                default_input=index == defaults["input"],
                default_output=index == defaults["output"],
            )
        )
    return devices


def choose(devices: list[Device], wanted: str | None, direction: Direction) -> Device:
    """The device for `wanted`: an index, an exact name, or a unique part of a
    name (case-insensitive); None means the system default."""
    usable = [d for d in devices if d.channels(direction) > 0]
    if not usable:
        raise DeviceError(f"no {direction} device at all (PortAudio sees {len(devices)} devices)")
    if wanted is None or not wanted.strip():
        flagged = [d for d in usable if (d.default_input if direction == "input" else d.default_output)]
        return flagged[0] if flagged else usable[0]
    wanted = wanted.strip()
    if wanted.isdigit():
        for d in usable:
            if d.index == int(wanted):
                return d
        raise DeviceError(f"no {direction} device with index {wanted}; {_names(usable)}")
    exact = [d for d in usable if d.name.lower() == wanted.lower()]
    if exact:
        return exact[0]
    partial = [d for d in usable if wanted.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if partial:
        raise DeviceError(f"{direction} device {wanted!r} is ambiguous: {_names(partial)}")
    raise DeviceError(f"no {direction} device matches {wanted!r}; {_names(usable)}")


def _names(devices: list[Device]) -> str:
    return "choose from: " + ", ".join(f"{d.index} {d.name!r}" for d in devices)
