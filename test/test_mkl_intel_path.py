"""tools/mkl_intel_path.py: the opt-in MKL shim builds and is preloaded, and a torch update under it computes what
it computes without it (up to fp32 rounding: other kernels sum in another order)."""
import json
import os
import subprocess
import sys

import pytest

from tools import mkl_intel_path

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One SAC update from fixed weights and a fixed batch; prints the losses and a weight checksum.
UPDATE = """
import json, sys
import numpy as np, torch
sys.path.insert(0, {root!r}); sys.path.insert(0, {bench!r})
from agent_speed import make_args, make_batches
from algorithm import create_agent
torch.manual_seed(0)
agent = create_agent(make_args('sac', 'torch', 1))
batch = make_batches(agent.args, 1)[0]
a = torch.randn(256, 23) @ torch.randn(23, 256)
info = {{key: float(value) for key, value in agent.train(batch).items()}}
info['weights'] = float(sum(p.double().sum() for p in agent.q1.parameters()))
info['product'] = float(a.double().sum())
print(json.dumps(info))
"""

# The file that defines MKL's vendor check in the process's global scope, where libtorch_cpu's
# calls to it resolve (through its PLT); None when only libtorch_cpu's own, local copy exists.
VENDOR_CHECK_OWNER = """
import ctypes, torch
class DlInfo(ctypes.Structure):
    _fields_ = [('fname', ctypes.c_char_p), ('fbase', ctypes.c_void_p), ('sname', ctypes.c_char_p),
                ('saddr', ctypes.c_void_p)]
process = ctypes.CDLL(None)
try:
    check = process.mkl_serv_intel_cpu_true
except AttributeError:
    print(None)
else:
    info = DlInfo()
    process.dladdr(ctypes.cast(check, ctypes.c_void_p), ctypes.byref(info))
    print(info.fname.decode())
"""


def run_code(code, preload=None):
    """The last line `code` prints, run in a fresh interpreter (with `preload` as LD_PRELOAD)."""
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    if preload:
        env['LD_PRELOAD'] = preload
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


def run_update(preload=None):
    return json.loads(run_code(UPDATE.format(root=ROOT, bench=os.path.join(ROOT, 'bench')), preload))


@pytest.mark.skipif(sys.platform != 'linux', reason='LD_PRELOAD shim: Linux only')
def test_shim_builds_and_keeps_the_update_within_rounding(tmp_path):
    try:
        path = mkl_intel_path.build(str(tmp_path))
    except RuntimeError as error:
        pytest.skip(str(error))
    assert os.path.isfile(path)
    # preloaded, not silently skipped (the loader only warns for a library it cannot preload)
    assert run_code(VENDOR_CHECK_OWNER) == 'None'
    assert os.path.samefile(run_code(VENDOR_CHECK_OWNER, path), path)
    plain, shimmed = run_update(), run_update(path)
    assert shimmed.keys() == plain.keys()
    for key in plain:
        assert shimmed[key] == pytest.approx(plain[key], rel=1e-5, abs=1e-5), key


def test_missing_compiler_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv('CC', 'no-such-compiler')
    monkeypatch.setattr(mkl_intel_path.shutil, 'which', lambda name: None)
    with pytest.raises(RuntimeError, match='no C compiler found'):
        mkl_intel_path.build(str(tmp_path))
    assert not os.listdir(tmp_path)
