"""Quiet output (issue 8): a run prints the project's lines only and writes nothing outside --logdir.

TensorFlow's start-up lines (absl's pre-InitializeLog notice and 'oneDNN custom operations are
on', twice) are filtered out while it imports, with oneDNN left on; MuJoCo's compiler notices
about gymnasium's models (HalfCheetah's `settotalmass`) are dropped and its other warnings go
through the project's logger instead of stdout and MUJOCO_LOG.TXT in the working directory; ALE's
banner is off, and gymnasium's warning that a '-v4' id is out of date is one project line instead.
"""
import importlib.util
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Two cycles, the first without updates: its TimeLeft is unknown (NaN), which must not reach
# TensorBoard (tensorboardX prints a line for each non-finite scalar).
TINY = ['--epochs=1', '--cycles=2', '--iterations=2', '--timesteps=20', '--warmup=60', '--batch_size=16',
        '--test_rollouts=1', '--test_timesteps=20', '--buffer_size=1000', '--train_batches=2']
# Every line a run of --env HalfCheetah-v2 --alg sac may print on stderr (the logger's lines).
PROJECT_LINES = ('HalfCheetah-v2 needs mujoco-py; running the maintained HalfCheetah-v5 instead',
                 'backend: TensorFlow', 'backend: PyTorch')


def run_quietly(tmp_path, backend_flags, run=('--env=HalfCheetah-v2', '--alg=sac'), project_lines=PROJECT_LINES):
    env = {key: value for key, value in os.environ.items()
           if key not in ('USE_PYTORCH', 'TF_CPP_MIN_LOG_LEVEL', 'TF_ENABLE_ONEDNN_OPTS')}
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'train.py'), *run,
                             *TINY, *backend_flags, '--logdir', str(tmp_path / 'log')],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(tmp_path)) == ['log']  # no MUJOCO_LOG.TXT or anything else in the cwd
    unexpected = [line for line in result.stderr.splitlines() if line not in project_lines]
    assert unexpected == [], result.stderr
    assert 'warning' not in result.stdout.lower(), result.stdout
    assert 'NaN or Inf' not in result.stdout, result.stdout
    return result


@pytest.mark.skipif(importlib.util.find_spec('tensorflow') is None, reason='TensorFlow is not installed')
def test_tf_run_prints_project_lines_only(tmp_path):
    result = run_quietly(tmp_path, ['--use_pytorch=False'])
    assert 'backend: TensorFlow' in result.stderr


def test_torch_run_prints_project_lines_only(tmp_path):
    run_quietly(tmp_path, ['--use_pytorch=True', '--cuda=False'])


def test_atari_run_prints_project_lines_only(tmp_path):
    """No 'A.L.E: Arcade Learning Environment (version ...)' and '[Powered by Stella]' per env built."""
    result = run_quietly(tmp_path, ['--use_pytorch=True', '--cuda=False'], ('--env=Pong', '--alg=dqn', '--noop=5'),
                         ('backend: PyTorch',))
    assert result.stderr == 'backend: PyTorch\n'


def test_out_of_date_mujoco_id_prints_one_project_line(tmp_path):
    """--env Hopper-v4 runs Hopper-v4, saying once that -v5 is maintained, without gymnasium's warning."""
    line = 'Hopper-v4 is out of date (Hopper-v5 is the maintained version); running Hopper-v4 as asked'
    result = run_quietly(tmp_path, ['--use_pytorch=True', '--cuda=False'], ('--env=Hopper-v4', '--alg=sac'),
                         (line, 'backend: PyTorch'))
    assert result.stderr.splitlines().count(line) == 1


@pytest.mark.skipif(importlib.util.find_spec('tensorflow') is None, reason='TensorFlow is not installed')
def test_tensorflow_keeps_onednn_on():
    code = ('import utils.tf_utils; from tensorflow.python.util import _pywrap_util_port as port; '
            'print(port.IsMklEnabled())')
    env = {key: value for key, value in os.environ.items() if key != 'TF_ENABLE_ONEDNN_OPTS'}
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.stdout.strip() == 'True' and result.stderr == '', result.stderr


def test_mujoco_warnings_go_to_the_logger(tmp_path, monkeypatch, caplog):
    """Other MuJoCo warnings (here: an unstable simulation) still reach the user, through the logger."""
    import mujoco
    import numpy as np

    import envs.mujoco  # noqa: F401  (installs the handler)
    monkeypatch.chdir(tmp_path)
    model = mujoco.MjModel.from_xml_string('<mujoco><worldbody><body><freejoint/><geom size=".1"/></body>'
                                           '</worldbody></mujoco>')
    data = mujoco.MjData(model)
    data.qvel[:] = np.nan
    mujoco.mj_step(model, data)
    assert [record.getMessage() for record in caplog.records] == [
        'MuJoCo: Nan, Inf or huge value in QVEL at DOF 0. The simulation is unstable. Time = 0.0000.']
    assert os.listdir(tmp_path) == []
