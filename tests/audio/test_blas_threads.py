"""audio-io's process keeps OpenBLAS to one thread (its worker threads spun a
whole core between blocks at 1,000 streams), unless the operator says
otherwise; the setting must be in place before numpy loads."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import os, sys; import huxley_audio_io.__main__; "
    "assert 'numpy' in sys.modules; print(os.environ.get('OPENBLAS_NUM_THREADS'))"
)


@pytest.mark.parametrize(("given", "expected"), [(None, "1"), ("4", "4")])
def test_the_service_process_runs_openblas_on_one_thread(given: str | None, expected: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == expected
